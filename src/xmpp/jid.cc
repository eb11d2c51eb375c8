// RFC 7622 JIDs. Localparts follow the PRECIS UsernameCaseMapped profile
// (RFC 8265 section 3.3), resourceparts OpaqueString (RFC 8265 section 4.2);
// domainparts get the RFC 5895-style mapping (width, lowercase, NFC) plus
// LDH/IdentifierClass checks per label. Full IDNA2008/UTS-46 is not done:
// A-labels are taken as ASCII LDH labels, not decoded.
#include "xmpp/jid.h"

#include <arpa/inet.h>

#include <cstdio>

#include "core/unicode.h"

namespace hearth::xmpp {
namespace {

namespace uc = hearth::unicode;

constexpr size_t kMaxPartBytes = 1023;
// Mapping shrinks a part by at most 3x (a fullwidth form or a Hangul L+V+T
// sequence becomes a third of its size), so anything longer than this
// cannot be a valid part; refusing it early bounds the work per part.
constexpr size_t kMaxRawPartBytes = 4 * kMaxPartBytes;
constexpr size_t kMaxLabelBytes = 63;
constexpr size_t kMaxDnsNameBytes = 253;
constexpr size_t kMaxEchoBytes = 64;

// A bounded, printable rendering of untrusted input for error messages
// (logs): at most kMaxEchoBytes of input; bytes of invalid UTF-8, controls,
// and invisible or format code points (bidi overrides, ...) are escaped.
std::string echo(std::string_view in) {
  const bool utf8 = uc::valid_utf8(in);
  std::string out = "\"";
  size_t i = 0;
  char buf[16];
  while (i < in.size()) {
    const auto c = static_cast<unsigned char>(in[i]);
    size_t len = 1;
    if (utf8 && c >= 0x80) len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
    if (i + len > kMaxEchoBytes) break;
    if (c >= 0x80 && utf8) {
      std::u32string cp;
      (void)uc::decode_utf8(in.substr(i, len), cp);
      const uc::PrecisProp p = uc::precis_property(cp[0]);
      if ((p == uc::PrecisProp::kPvalid || p == uc::PrecisProp::kFreePval) &&
          !uc::is_space_separator(cp[0])) {
        out.append(in.substr(i, len));
      } else {
        std::snprintf(buf, sizeof buf, "\\u{%04X}", static_cast<unsigned>(cp[0]));
        out += buf;
      }
    } else if (c < 0x20 || c >= 0x7F || c == '"' || c == '\\') {
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out.push_back(static_cast<char>(c));
    }
    i += len;
  }
  out += i < in.size() ? "\"..." : "\"";
  return out;
}

std::string describe_char(char32_t cp) {
  char buf[16];
  if (cp > 0x20 && cp < 0x7F) {
    std::snprintf(buf, sizeof buf, "'%c'", static_cast<char>(cp));
  } else {
    std::snprintf(buf, sizeof buf, "U+%04X", static_cast<unsigned>(cp));
  }
  return buf;
}

Error part_error(const char* part, std::string_view in, const std::string& why) {
  return make_error(std::string(part) + " " + echo(in) + ": " + why);
}

Status check_length(const char* part, std::string_view in, size_t bytes) {
  if (bytes == 0) return make_error(std::string(part) + " is empty");
  if (bytes > kMaxPartBytes) {
    return part_error(part, in, "longer than 1023 bytes after normalisation");
  }
  return {};
}

// RFC 7622 section 3.3.1: characters a localpart may not hold even though
// the PRECIS IdentifierClass allows them.
bool forbidden_in_localpart(char32_t c) {
  return c == '"' || c == '&' || c == '\'' || c == '/' || c == ':' || c == '<' || c == '>' ||
         c == '@';
}

bool is_ascii_control_or_space(char32_t c) {
  return c <= 0x20 || c == 0x7F;
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  }
  return out;
}

Result<std::u32string> decode(const char* part, std::string_view in) {
  std::u32string cps;
  if (!uc::decode_utf8(in, cps)) return part_error(part, in, "not valid UTF-8");
  return cps;
}

// One label of a domainpart that is not an IP literal (already mapped).
Status check_label(std::string_view in, std::u32string_view label) {
  constexpr const char* kPart = "domainpart";
  if (label.empty()) return part_error(kPart, in, "empty label");
  std::string bytes;
  uc::append_utf8(label, bytes);
  if (bytes.size() > kMaxLabelBytes) {
    return part_error(kPart, in, "label longer than 63 bytes");
  }
  if (label.front() == '-' || label.back() == '-') {
    return part_error(kPart, in, "label starts or ends with '-'");
  }
  if (uc::is_mark(label.front())) {
    return part_error(kPart, in, "label starts with a combining mark");  // RFC 5891 4.2.3.2
  }
  for (char32_t c : label) {
    if (c >= 0x80) continue;
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') continue;
    const char* what =
        is_ascii_control_or_space(c) ? "forbidden control or space " : "forbidden character ";
    return part_error(kPart, in, std::string("label contains ") + what + describe_char(c));
  }
  Status st = uc::precis_check(label, uc::StringClass::kIdentifier);
  if (!st) return part_error(kPart, in, st.error().message);
  return {};
}

// The common case of a domainpart, a DNS name of ASCII letters, digits,
// '-' and '.' (an optional trailing dot), checked and lowercased without
// the general mapping: false (and `out` untouched) for anything else,
// which the general path then handles, errors included. Routing parses
// several JIDs per stanza and per presence recipient.
bool ascii_dns_name(std::string_view in, std::string* out) {
  if (!in.empty() && in.back() == '.') in.remove_suffix(1);
  if (in.empty() || in.size() > kMaxDnsNameBytes) return false;
  bool letter = false;  // digits and dots only: the IPv4 path
  size_t label = 0;     // bytes of the current label
  char prev = '.';
  for (char c : in) {
    if (c == '.') {
      if (label == 0 || prev == '-') return false;
      label = 0;
    } else {
      const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
      if (!alpha && !(c >= '0' && c <= '9') && c != '-') return false;
      if (c == '-' && label == 0) return false;
      if (++label > kMaxLabelBytes) return false;
      letter |= alpha || c == '-';
    }
    prev = c;
  }
  if (label == 0 || prev == '-' || !letter) return false;
  out->assign(in);
  for (char& c : *out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  }
  return true;
}

bool all_digits_and_dots(std::u32string_view s) {
  for (char32_t c : s) {
    if (!(c == '.' || (c >= '0' && c <= '9'))) return false;
  }
  return true;
}

}  // namespace

Result<std::string> normalize_localpart(std::string_view in) {
  constexpr const char* kPart = "localpart";
  if (in.empty()) return make_error("localpart is empty");
  if (in.size() > kMaxRawPartBytes) return part_error(kPart, in, "longer than 1023 bytes");
  if (uc::is_ascii(in)) {
    // ASCII fast path: width mapping and NFC are identities; %x21-7E are
    // PVALID in IdentifierClass.
    for (char ch : in) {
      const auto c = static_cast<unsigned char>(ch);
      if (is_ascii_control_or_space(c)) {
        return part_error(kPart, in, "contains forbidden control or space " + describe_char(c));
      }
      if (forbidden_in_localpart(c)) {
        return part_error(kPart, in, "contains forbidden character " + describe_char(c));
      }
    }
    std::string out = ascii_lower(in);
    Status st = check_length(kPart, in, out.size());
    if (!st) return st.error();
    return out;
  }
  auto decoded = decode(kPart, in);
  if (!decoded) return decoded.error();
  // RFC 8265 section 3.3.2: width mapping, case mapping, NFC, Bidi Rule;
  // then the string must conform to IdentifierClass.
  std::u32string cps = std::move(decoded.value());
  uc::width_map_in_place(cps);
  cps = uc::to_lower(cps);
  uc::nfc_in_place(cps);
  for (char32_t c : cps) {
    if (c < 0x80 && forbidden_in_localpart(c)) {
      return part_error(kPart, in, "contains forbidden character " + describe_char(c));
    }
  }
  Status st = uc::precis_check(cps, uc::StringClass::kIdentifier);
  if (!st) return part_error(kPart, in, st.error().message);
  if (uc::has_rtl(cps) && !uc::bidi_rule_ok(cps)) {
    return part_error(kPart, in, "violates the Bidi Rule (RFC 5893)");
  }
  std::string out;
  uc::append_utf8(cps, out);
  st = check_length(kPart, in, out.size());
  if (!st) return st.error();
  return out;
}

Result<std::string> normalize_resourcepart(std::string_view in) {
  constexpr const char* kPart = "resourcepart";
  if (in.empty()) return make_error("resourcepart is empty");
  if (in.size() > kMaxRawPartBytes) return part_error(kPart, in, "longer than 1023 bytes");
  if (uc::is_ascii(in)) {
    // %x20-7E are valid in FreeformClass; NFC is the identity.
    for (char ch : in) {
      const auto c = static_cast<unsigned char>(ch);
      if (c < 0x20 || c == 0x7F) {
        return part_error(kPart, in, "contains forbidden control character " + describe_char(c));
      }
    }
    Status st = check_length(kPart, in, in.size());
    if (!st) return st.error();
    return std::string(in);
  }
  auto decoded = decode(kPart, in);
  if (!decoded) return decoded.error();
  // RFC 8265 section 4.2.2: non-ASCII spaces become U+0020, then NFC; case is
  // preserved; the result must conform to FreeformClass.
  std::u32string cps = std::move(decoded.value());
  for (char32_t& c : cps) {
    if (c >= 0x80 && uc::is_space_separator(c)) c = 0x20;
  }
  uc::nfc_in_place(cps);
  Status st = uc::precis_check(cps, uc::StringClass::kFreeform);
  if (!st) return part_error(kPart, in, st.error().message);
  std::string out;
  uc::append_utf8(cps, out);
  st = check_length(kPart, in, out.size());
  if (!st) return st.error();
  return out;
}

Result<std::string> normalize_domainpart(std::string_view in) {
  constexpr const char* kPart = "domainpart";
  if (in.empty()) return make_error("domainpart is empty");
  if (in.size() > kMaxRawPartBytes) return part_error(kPart, in, "longer than 1023 bytes");

  // IPv6 literal (RFC 7622 section 3.2.1, RFC 3986 IP-literal).
  if (in.front() == '[') {
    if (in.size() < 3 || in.back() != ']') {
      return part_error(kPart, in, "unterminated IPv6 literal");
    }
    const std::string inner(in.substr(1, in.size() - 2));
    unsigned char addr[16];
    if (inner.size() > 45 || inet_pton(AF_INET6, inner.c_str(), addr) != 1) {
      return part_error(kPart, in, "invalid IPv6 address literal");
    }
    return "[" + ascii_lower(inner) + "]";
  }
  if (std::string fast; ascii_dns_name(in, &fast)) return fast;

  std::u32string cps;
  if (uc::is_ascii(in)) {
    cps.assign(in.begin(), in.end());
  } else {
    auto decoded = decode(kPart, in);
    if (!decoded) return decoded.error();
    cps = std::move(decoded.value());
    // RFC 5895 mapping: width, ideographic full stop as label separator,
    // lowercase, NFC.
    uc::width_map_in_place(cps);
    for (char32_t& c : cps) {
      if (c == 0x3002) c = '.';
    }
  }
  if (!cps.empty() && cps.back() == '.') cps.pop_back();  // RFC 7622 section 3.2
  if (cps.empty()) return part_error(kPart, in, "empty after removing the trailing dot");

  if (all_digits_and_dots(cps)) {
    // Dotted IPv4 (kept as is). A name of only digits and dots that is not
    // an address is refused: no top-level domain is numeric.
    const std::string name(cps.begin(), cps.end());
    unsigned char addr[4];
    if (inet_pton(AF_INET, name.c_str(), addr) != 1) {
      return part_error(kPart, in, "invalid IPv4 address");
    }
    return name;
  }
  if (uc::is_ascii(in)) {
    for (char32_t& c : cps) {
      if (c >= 'A' && c <= 'Z') c += 32;
    }
  } else {
    cps = uc::to_lower(cps);
    uc::nfc_in_place(cps);
  }

  bool rtl = false;
  size_t start = 0;
  const std::u32string_view view(cps);
  while (true) {
    const size_t dot = view.find(U'.', start);
    const std::u32string_view label =
        view.substr(start, dot == std::u32string_view::npos ? view.npos : dot - start);
    Status st = check_label(in, label);
    if (!st) return st.error();
    rtl |= uc::has_rtl(label);
    if (dot == std::u32string_view::npos) break;
    start = dot + 1;
  }
  if (rtl) {
    // RFC 5893: in a domain name with an RTL label, every label obeys the rule.
    start = 0;
    while (true) {
      const size_t dot = view.find(U'.', start);
      if (!uc::bidi_rule_ok(
              view.substr(start, dot == std::u32string_view::npos ? view.npos : dot - start))) {
        return part_error(kPart, in, "violates the Bidi Rule (RFC 5893)");
      }
      if (dot == std::u32string_view::npos) break;
      start = dot + 1;
    }
  }
  std::string out;
  uc::append_utf8(cps, out);
  if (uc::is_ascii(out) && out.size() > kMaxDnsNameBytes) {
    return part_error(kPart, in, "DNS name longer than 253 bytes");
  }
  Status st = check_length(kPart, in, out.size());
  if (!st) return st.error();
  return out;
}

Result<Jid> Jid::parse(std::string_view text) {
  if (text.size() > 3 * kMaxRawPartBytes + 2) return make_error("JID is too long");
  // RFC 7622 section 3.1: the resourcepart runs from the first '/', the
  // localpart up to the first '@' before it.
  std::string_view head = text, resource;
  const size_t slash = text.find('/');
  const bool has_slash = slash != std::string_view::npos;
  if (has_slash) {
    head = text.substr(0, slash);
    resource = text.substr(slash + 1);
  }
  std::string_view local, domain = head;
  const size_t at = head.find('@');
  const bool has_at = at != std::string_view::npos;
  if (has_at) {
    local = head.substr(0, at);
    domain = head.substr(at + 1);
  }
  if (has_at && local.empty())
    return make_error("localpart is empty (JID has '@' but no localpart)");
  if (has_slash && resource.empty()) {
    return make_error("resourcepart is empty (JID has '/' but no resourcepart)");
  }
  if (domain.empty()) return make_error("domainpart is empty");
  return from_parts(local, domain, resource);
}

Result<Jid> Jid::from_parts(std::string_view local, std::string_view domain,
                            std::string_view resource) {
  Jid jid;
  if (!local.empty()) {
    auto l = normalize_localpart(local);
    if (!l) return l.error();
    jid.local_ = std::move(l.value());
  }
  auto d = normalize_domainpart(domain);
  if (!d) return d.error();
  jid.domain_ = std::move(d.value());
  if (!resource.empty()) {
    auto r = normalize_resourcepart(resource);
    if (!r) return r.error();
    jid.resource_ = std::move(r.value());
  }
  return jid;
}

std::string Jid::bare() const {
  if (local_.empty()) return domain_;
  std::string out;
  out.reserve(local_.size() + 1 + domain_.size());
  out += local_;
  out += '@';
  out += domain_;
  return out;
}

std::string Jid::full() const {
  std::string out = bare();
  if (!resource_.empty()) {
    out += '/';
    out += resource_;
  }
  return out;
}

Jid Jid::bare_jid() const {
  Jid j = *this;
  j.resource_.clear();
  return j;
}

}  // namespace hearth::xmpp
