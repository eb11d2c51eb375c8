#include "core/ini.h"

#include <algorithm>
#include <charconv>
#include <cstdio>

namespace hearth::config::ini {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

std::string at(std::string_view filename, int line) {
  return std::string(filename) + ":" + std::to_string(line) + ": ";
}

}  // namespace

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front()))
    s.remove_prefix(1);
  while (!s.empty() && is_space(s.back()))
    s.remove_suffix(1);
  return s;
}

std::string quoted(std::string_view s) {
  constexpr size_t kMax = 60;
  if (s.size() <= kMax) return "'" + std::string(s) + "'";
  size_t n = kMax;
  // Do not cut a UTF-8 sequence in half.
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80)
    --n;
  return "'" + std::string(s.substr(0, n)) + "...'";
}

Result<std::vector<Entry>> tokenize(std::string_view text, std::string_view filename) {
  std::vector<Entry> out;
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // UTF-8 BOM
  int number = 0;
  while (!text.empty()) {
    ++number;
    size_t nl = text.find('\n');
    std::string_view raw = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    std::string_view line = trim(raw);
    for (char ch : line) {
      auto c = static_cast<unsigned char>(ch);
      if ((c < 0x20 && c != '\t') || c == 0x7F) {
        char hex[8];
        snprintf(hex, sizeof hex, "0x%02x", c);
        return make_error(at(filename, number) + "line contains a control character (byte " + hex +
                          "); remove it");
      }
    }
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    if (line.front() == '[') {
      if (line.back() != ']') {
        return make_error(at(filename, number) + "section header " + quoted(line) +
                          " has no closing ']'; write it as [" + std::string(trim(line.substr(1))) +
                          "]");
      }
      std::string_view name = trim(line.substr(1, line.size() - 2));
      if (name.empty()) {
        return make_error(at(filename, number) +
                          "empty section header '[]'; write a section name, e.g. [server]");
      }
      out.push_back(Entry{Entry::Kind::kSection, number, name, {}});
      continue;
    }
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) {
      return make_error(at(filename, number) + quoted(line) +
                        " is not a key = value line, a [section] or a comment; write key = "
                        "value, or start the line with # to comment it out");
    }
    std::string_view key = trim(line.substr(0, eq));
    if (key.empty()) {
      return make_error(at(filename, number) + quoted(line) +
                        " has no key before '='; write key = value");
    }
    out.push_back(Entry{Entry::Kind::kKeyValue, number, key, trim(line.substr(eq + 1))});
  }
  return out;
}

Result<std::string> unquote(std::string_view raw, std::string_view key) {
  if (raw.empty() || raw.front() != '"') return std::string(raw);
  if (raw.size() >= 2 && raw.back() == '"') return std::string(raw.substr(1, raw.size() - 2));
  if (raw.find('"', 1) != std::string_view::npos) {
    return make_error("'" + std::string(key) + "' has text after the closing quote in " +
                      quoted(raw) + "; put the whole value inside the quotes");
  }
  return make_error("'" + std::string(key) + "' has an unterminated quote in " + quoted(raw) +
                    "; end the value with \"");
}

Result<std::vector<std::string>> split_list(std::string_view raw, std::string_view key) {
  std::vector<std::string> items;
  if (trim(raw).empty()) return items;
  size_t start = 0;
  bool in_quotes = false;
  for (size_t i = 0; i <= raw.size(); ++i) {
    if (i < raw.size() && raw[i] == '"') in_quotes = !in_quotes;
    if (i < raw.size() && (raw[i] != ',' || in_quotes)) continue;
    std::string_view item = trim(raw.substr(start, i - start));
    start = i + 1;
    if (item.empty()) {
      return make_error("'" + std::string(key) + "' has an empty item in " + quoted(raw) +
                        "; separate items with single commas and leave no trailing comma");
    }
    Result<std::string> value = unquote(item, key);
    if (!value) return value.error();
    items.push_back(std::move(value.value()));
  }
  return items;
}

bool parse_bool(std::string_view text, bool* out) {
  if (text == "true" || text == "yes" || text == "on") {
    *out = true;
  } else if (text == "false" || text == "no" || text == "off") {
    *out = false;
  } else {
    return false;
  }
  return true;
}

bool parse_int(std::string_view text, int64_t* out) {
  if (text.empty()) return false;
  // from_chars accepts a leading '-' but no '+' and no spaces, which is what we want.
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, *out, 10);
  return ec == std::errc() && ptr == end;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  // Full matrix: keys are short, and transpositions need two rows back.
  const size_t n = a.size(), m = b.size();
  std::vector<size_t> d((n + 1) * (m + 1));
  auto cell = [&](size_t i, size_t j) -> size_t& { return d[i * (m + 1) + j]; };
  for (size_t i = 0; i <= n; ++i)
    cell(i, 0) = i;
  for (size_t j = 0; j <= m; ++j)
    cell(0, j) = j;
  for (size_t i = 1; i <= n; ++i) {
    for (size_t j = 1; j <= m; ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      size_t best = std::min({cell(i - 1, j) + 1, cell(i, j - 1) + 1, cell(i - 1, j - 1) + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        best = std::min(best, cell(i - 2, j - 2) + 1);
      }
      cell(i, j) = best;
    }
  }
  return cell(n, m);
}

}  // namespace hearth::config::ini
