#include "xml.h"

#include <cstdlib>

namespace hearth::bench {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}
bool is_name_end(char c) {
  return is_space(c) || c == '>' || c == '/';
}

// End ('>') of the tag starting at `start` ('<'), honouring quoted values.
size_t tag_end(std::string_view s, size_t start) {
  char quote = 0;
  for (size_t i = start + 1; i < s.size(); ++i) {
    char c = s[i];
    if (quote != 0) {
      if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '>') {
      return i;
    }
  }
  return std::string_view::npos;
}

std::string_view qname_at(std::string_view s, size_t lt) {
  size_t i = lt + 1;
  size_t b = i;
  while (i < s.size() && !is_name_end(s[i]))
    ++i;
  return s.substr(b, i - b);
}

std::string_view strip_prefix(std::string_view q) {
  size_t c = q.find(':');
  return c == std::string_view::npos ? q : q.substr(c + 1);
}

// Position of the first start tag (after `from`) whose local name is `name`.
size_t find_start_tag(std::string_view el, std::string_view name, size_t from) {
  for (size_t i = el.find('<', from); i != std::string_view::npos; i = el.find('<', i + 1)) {
    if (i + 1 < el.size() && (el[i + 1] == '/' || el[i + 1] == '?' || el[i + 1] == '!')) continue;
    if (strip_prefix(qname_at(el, i)) == name) return i;
  }
  return std::string_view::npos;
}

}  // namespace

void StreamSplitter::reset() {
  buf_.clear();
  pos_ = 0;
  elem_start_ = 0;
  depth_ = 0;
}

bool StreamSplitter::feed(std::string_view data, std::vector<Item>* out) {
  buf_.append(data);
  std::string_view s(buf_);
  while (true) {
    size_t lt = s.find('<', pos_);
    if (lt == std::string_view::npos) {
      pos_ = s.size();
      break;
    }
    pos_ = lt;
    if (s.compare(lt, 4, "<!--") == 0) {
      size_t e = s.find("-->", lt + 4);
      if (e == std::string_view::npos) break;
      pos_ = e + 3;
      continue;
    }
    if (s.compare(lt, 9, "<![CDATA[") == 0) {
      size_t e = s.find("]]>", lt + 9);
      if (e == std::string_view::npos) break;
      pos_ = e + 3;
      continue;
    }
    if (lt + 1 >= s.size()) break;
    if (s[lt + 1] == '?') {
      size_t e = s.find("?>", lt + 2);
      if (e == std::string_view::npos) break;
      pos_ = e + 2;
      continue;
    }
    size_t gt = tag_end(s, lt);
    if (gt == std::string_view::npos) break;
    pos_ = gt + 1;
    if (s[lt + 1] == '/') {
      --depth_;
      if (depth_ == 1) {
        out->push_back({Event::kElement, std::string(s.substr(elem_start_, pos_ - elem_start_))});
      } else if (depth_ == 0) {
        out->push_back({Event::kClosed, {}});
      } else if (depth_ < 0) {
        return false;
      }
      continue;
    }
    bool self_closing = s[gt - 1] == '/';
    if (depth_ == 0) {
      out->push_back({Event::kHeader, std::string(s.substr(lt, pos_ - lt))});
      if (!self_closing) depth_ = 1;
      continue;
    }
    if (depth_ == 1) {
      elem_start_ = lt;
      if (self_closing) {
        out->push_back({Event::kElement, std::string(s.substr(lt, pos_ - lt))});
        continue;
      }
    }
    if (!self_closing) ++depth_;
  }
  // Drop what is consumed: everything before the open element (or the scan point).
  size_t keep = depth_ >= 2 ? elem_start_ : pos_;
  if (keep > 0) {
    buf_.erase(0, keep);
    pos_ -= keep;
    if (depth_ >= 2) elem_start_ = 0;
  }
  return true;
}

std::string_view local_name(std::string_view el) {
  if (el.empty() || el[0] != '<') return {};
  return strip_prefix(qname_at(el, 0));
}

namespace {

// Finds attribute `name` in the start tag; sets [vb, ve) of the raw value.
bool find_attr(std::string_view el, std::string_view name, size_t* vb, size_t* ve) {
  if (el.empty() || el[0] != '<') return false;
  size_t end = tag_end(el, 0);
  if (end == std::string_view::npos) return false;
  size_t i = 1;
  while (i < end && !is_name_end(el[i]))
    ++i;
  while (i < end) {
    while (i < end && (is_space(el[i]) || el[i] == '/'))
      ++i;
    size_t nb = i;
    while (i < end && el[i] != '=' && !is_space(el[i]))
      ++i;
    std::string_view n = el.substr(nb, i - nb);
    while (i < end && (is_space(el[i]) || el[i] == '='))
      ++i;
    if (i >= end) return false;
    char q = el[i];
    if (q != '\'' && q != '"') return false;
    size_t b = i + 1;
    size_t e = el.find(q, b);
    if (e == std::string_view::npos || e > end) return false;
    if (n == name) {
      *vb = b;
      *ve = e;
      return true;
    }
    i = e + 1;
  }
  return false;
}

}  // namespace

std::string attr(std::string_view el, std::string_view name) {
  size_t b = 0;
  size_t e = 0;
  if (!find_attr(el, name, &b, &e)) return {};
  return xml_unescape(el.substr(b, e - b));
}

bool has_attr(std::string_view el, std::string_view name) {
  size_t b = 0;
  size_t e = 0;
  return find_attr(el, name, &b, &e);
}

bool has_child(std::string_view el, std::string_view name) {
  if (el.empty()) return false;
  return find_start_tag(el, name, 1) != std::string_view::npos;
}

namespace {

// Text of the element starting at `lt`; `*next` is where to continue.
std::string text_at(std::string_view el, size_t lt, size_t* next) {
  size_t gt = tag_end(el, lt);
  if (gt == std::string_view::npos) {
    *next = el.size();
    return {};
  }
  *next = gt + 1;
  if (el[gt - 1] == '/') return {};
  size_t close = el.find("</", gt + 1);
  if (close == std::string_view::npos) return {};
  *next = close;
  return xml_unescape(el.substr(gt + 1, close - gt - 1));
}

}  // namespace

std::string child_text(std::string_view el, std::string_view name) {
  size_t lt = find_start_tag(el, name, 1);
  if (lt == std::string_view::npos) return {};
  size_t next = 0;
  return text_at(el, lt, &next);
}

std::vector<std::string> children_text(std::string_view el, std::string_view name) {
  std::vector<std::string> out;
  size_t from = 1;
  while (true) {
    size_t lt = find_start_tag(el, name, from);
    if (lt == std::string_view::npos) break;
    size_t next = 0;
    out.push_back(text_at(el, lt, &next));
    from = next;
  }
  return out;
}

std::string xml_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '\'':
        out += "&apos;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string xml_unescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '&') {
      out += s[i];
      continue;
    }
    size_t semi = s.find(';', i);
    if (semi == std::string_view::npos) {
      out += s[i];
      continue;
    }
    std::string_view ent = s.substr(i + 1, semi - i - 1);
    if (ent == "amp")
      out += '&';
    else if (ent == "lt")
      out += '<';
    else if (ent == "gt")
      out += '>';
    else if (ent == "apos")
      out += '\'';
    else if (ent == "quot")
      out += '"';
    else if (!ent.empty() && ent[0] == '#') {
      unsigned long cp = ent.size() > 1 && (ent[1] == 'x' || ent[1] == 'X')
                             ? strtoul(std::string(ent.substr(2)).c_str(), nullptr, 16)
                             : strtoul(std::string(ent.substr(1)).c_str(), nullptr, 10);
      if (cp < 0x80) {
        out += static_cast<char>(cp);
      } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
      } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
      } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
      }
    } else {
      out.append(s.substr(i, semi - i + 1));
    }
    i = semi;
  }
  return out;
}

}  // namespace hearth::bench
