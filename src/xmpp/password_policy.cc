#include "xmpp/password_policy.h"

#include <sodium.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "core/unicode.h"
#include "xmpp/scram.h"

namespace hearth::xmpp {
namespace {

struct CommonGroup {
  uint16_t length;  // bytes (= characters: the list is ASCII)
  uint16_t count;
  uint32_t offset;  // into kCommonText
};

#include "xmpp/common_passwords.inc"

static_assert(sizeof(kCommonText) == kCommonTextSize + 1, "list and its size disagree");

// A username shorter than this is not looked for: one or two characters
// ("jo") turn up by chance in many strong passwords (a random 16-character
// password holds a given letter more often than not), so refusing them would
// reject good passwords while telling an attacker nothing.
constexpr size_t kMinUsernameLength = 3;
// The same for the labels of the domain ("me" of me.example).
constexpr size_t kMinLabelLength = 4;

// Copies of the password wipe themselves.
struct WipedString {
  std::string s;
  ~WipedString() { sodium_memzero(s.data(), s.size()); }
};
struct WipedCps {
  std::u32string s;
  ~WipedCps() { sodium_memzero(s.data(), s.size() * sizeof(char32_t)); }
};

// Unicode lower-case code points of `utf8`; false if it is not valid UTF-8.
bool lower_cps(std::string_view utf8, WipedCps* out) {
  WipedCps cps;
  if (!unicode::decode_utf8(utf8, cps.s)) return false;
  out->s = unicode::to_lower(cps.s);
  return true;
}

bool contains(std::u32string_view hay, std::u32string_view needle) {
  return hay.find(needle) != std::u32string_view::npos;
}

// Binary search in the group of entries of `key`'s length. `key` is lower-case.
bool common_lower_ascii(std::string_view key) {
  for (const CommonGroup& g : kCommonGroups) {
    if (g.length != key.size()) continue;
    const char* base = kCommonText + g.offset;
    size_t lo = 0, hi = g.count;
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      int c = memcmp(base + mid * g.length, key.data(), g.length);
      if (c == 0) return true;
      if (c < 0) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return false;
  }
  return false;
}

// `lower` is already lower-cased.
bool common_lower(std::u32string_view lower) {
  WipedString ascii;
  ascii.s.reserve(lower.size());
  for (char32_t cp : lower) {
    if (cp < 0x20 || cp > 0x7E) return false;  // the list is printable ASCII
    ascii.s.push_back(static_cast<char>(cp));
  }
  return common_lower_ascii(ascii.s);
}

}  // namespace

Status check_password(std::string_view password, std::string_view username, std::string_view domain,
                      size_t min_length) {
  if (!unicode::valid_utf8(password)) return make_error("the password is not valid UTF-8");
  // Judge what will be stored (non-ASCII spaces mapped, NFC): a decomposed
  // "é" is one character, not two.
  Result<std::string> prepared = prepare_password(password);
  if (!prepared.ok()) return make_error("the " + prepared.error().message);
  WipedString stored{std::move(prepared.value())};
  WipedCps lower;
  if (!lower_cps(stored.s, &lower)) return make_error("the password is not valid UTF-8");

  if (lower.s.size() < min_length) {
    return make_error("the password is too short: use at least " + std::to_string(min_length) +
                      " characters");
  }
  WipedCps user;  // not secret; wiped by the same type anyway
  if (lower_cps(username, &user) && user.s.size() >= kMinUsernameLength &&
      contains(lower.s, user.s)) {
    return make_error("the password must not contain the username");
  }
  WipedCps host;
  if (lower_cps(domain, &host) && !host.s.empty()) {
    if (contains(lower.s, host.s)) return make_error("the password must not contain the domain");
    // Each label but the last (the top-level domain): "example" of
    // example.org, and of chat.example.org both "chat" and "example" (the
    // registrable name is not always the first label).
    std::u32string_view rest = host.s;
    for (size_t dot = rest.find(U'.'); dot != std::u32string_view::npos; dot = rest.find(U'.')) {
      std::u32string_view label = rest.substr(0, dot);
      if (label.size() >= kMinLabelLength && contains(lower.s, label))
        return make_error("the password must not contain the domain");
      rest.remove_prefix(dot + 1);
    }
  }
  if (common_lower(lower.s)) return make_error("the password is one of the most common passwords");
  return {};
}

bool is_common_password(std::string_view password) {
  WipedCps lower;
  return lower_cps(password, &lower) && common_lower(lower.s);
}

size_t common_password_count() {
  return kCommonCount;
}

std::string_view common_password(size_t index) {
  for (const CommonGroup& g : kCommonGroups) {
    if (index < g.count) return {kCommonText + g.offset + index * g.length, g.length};
    index -= g.count;
  }
  return {};
}

}  // namespace hearth::xmpp
