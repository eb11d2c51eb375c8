#include "core/unicode.h"

#include <algorithm>
#include <cstdio>
#include <iterator>

namespace hearth::unicode {
namespace {

#include "core/unicode_tables.inc"

// Hangul syllable arithmetic (Unicode 3.12).
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28;
constexpr char32_t kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

template <size_t N>
uint8_t run_lookup(const uint32_t (&runs)[N], char32_t cp) {
  const uint32_t key = (static_cast<uint32_t>(cp) << 8) | 0xFF;
  const uint32_t* it = std::upper_bound(runs, runs + N, key);
  // runs[0] starts at U+0000, so `it` is never the first element.
  return static_cast<uint8_t>(*(it - 1) & 0xFF);
}

template <size_t N>
const DeltaRun* delta_lookup(const DeltaRun (&runs)[N], char32_t cp) {
  const DeltaRun* it = std::upper_bound(runs, runs + N, cp,
                                        [](char32_t c, const DeltaRun& r) { return c < r.first; });
  if (it == runs) return nullptr;
  const DeltaRun* r = it - 1;
  const char32_t off = cp - r->first;
  if (off % r->stride != 0 || off / r->stride >= r->count) return nullptr;
  return r;
}

const DecompEntry* find_decomp(char32_t cp) {
  const DecompEntry* end = kDecomp + std::size(kDecomp);
  const DecompEntry* it =
      std::lower_bound(kDecomp, end, cp, [](const DecompEntry& e, char32_t c) { return e.cp < c; });
  return (it != end && it->cp == cp) ? it : nullptr;
}

void decompose_into(char32_t cp, std::u32string& out, int depth) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const char32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  const DecompEntry* e = depth < 8 ? find_decomp(cp) : nullptr;
  if (e == nullptr) {
    out.push_back(cp);
    return;
  }
  decompose_into(e->first, out, depth + 1);
  if (e->second != 0) decompose_into(e->second, out, depth + 1);
}

// Primary composite of (a, b), or 0.
char32_t compose_pair(char32_t a, char32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount) {
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  }
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase &&
      b < kTBase + kTCount) {
    return a + (b - kTBase);
  }
  const uint16_t* end = kCompIndex + std::size(kCompIndex);
  const uint16_t* it = std::lower_bound(kCompIndex, end, 0, [a, b](uint16_t idx, int) {
    const DecompEntry& e = kDecomp[idx];
    return e.first < a || (e.first == a && e.second < b);
  });
  if (it != end && kDecomp[*it].first == a && kDecomp[*it].second == b) return kDecomp[*it].cp;
  return 0;
}

constexpr uint8_t kCaseCased = 1, kCaseIgnorable = 2;
constexpr uint8_t kScriptGreek = 1, kScriptHebrew = 2, kScriptKanaHan = 4, kFlagMark = 8,
                  kFlagSpaceSeparator = 16;

// Final_Sigma (Unicode 3.13, as CPython applies it): a cased letter before
// (skipping case-ignorables) and no cased letter after (skipping them too).
bool final_sigma(std::u32string_view s, size_t i) {
  size_t j = i;
  uint8_t prop = 0;
  bool found = false;
  while (j > 0) {
    prop = run_lookup(kCaseRuns, s[--j]);
    if (prop != kCaseIgnorable) {
      found = true;
      break;
    }
  }
  if (!found || prop != kCaseCased) return false;
  for (j = i + 1; j < s.size(); ++j) {
    prop = run_lookup(kCaseRuns, s[j]);
    if (prop != kCaseIgnorable) return prop != kCaseCased;
  }
  return true;
}

std::string describe(char32_t cp) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "U+%04X", static_cast<unsigned>(cp));
  return buf;
}

bool is_noncharacter(char32_t cp) {
  return (cp >= 0xFDD0 && cp <= 0xFDEF) || (cp & 0xFFFE) == 0xFFFE;
}

const char* disallowed_reason(char32_t cp) {
  if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) return "control character";
  if (is_noncharacter(cp)) return "noncharacter";
  if ((cp >= 0xE000 && cp <= 0xF8FF) || cp >= 0xF0000) return "private-use character";
  if (cp >= 0xD800 && cp <= 0xDFFF) return "surrogate";
  return "disallowed character (format, ignorable, line/paragraph separator or old Hangul jamo)";
}

// RFC 5892 Appendix A. `i` indexes a CONTEXTJ/CONTEXTO code point of `s`.
bool context_rule_ok(std::u32string_view s, size_t i) {
  const char32_t cp = s[i];
  switch (cp) {
    case 0x200C:  // ZERO WIDTH NON-JOINER: virama form only (see header)
    case 0x200D:  // ZERO WIDTH JOINER
      return i > 0 && combining_class(s[i - 1]) == 9;
    case 0x00B7:  // MIDDLE DOT: between two 'l'
      return i > 0 && i + 1 < s.size() && s[i - 1] == 0x6C && s[i + 1] == 0x6C;
    case 0x0375:  // GREEK LOWER NUMERAL SIGN: followed by Greek
      return i + 1 < s.size() && (run_lookup(kFlagRuns, s[i + 1]) & kScriptGreek) != 0;
    case 0x05F3:  // HEBREW PUNCTUATION GERESH / GERSHAYIM: preceded by Hebrew
    case 0x05F4:
      return i > 0 && (run_lookup(kFlagRuns, s[i - 1]) & kScriptHebrew) != 0;
    case 0x30FB:  // KATAKANA MIDDLE DOT: some Hiragana, Katakana or Han
      for (char32_t c : s) {
        if ((run_lookup(kFlagRuns, c) & kScriptKanaHan) != 0) return true;
      }
      return false;
    default:
      break;
  }
  if (cp >= 0x0660 && cp <= 0x0669) {  // ARABIC-INDIC DIGITS: no extended ones
    return std::none_of(s.begin(), s.end(), [](char32_t c) { return c >= 0x06F0 && c <= 0x06F9; });
  }
  if (cp >= 0x06F0 && cp <= 0x06F9) {  // EXTENDED ARABIC-INDIC DIGITS
    return std::none_of(s.begin(), s.end(), [](char32_t c) { return c >= 0x0660 && c <= 0x0669; });
  }
  return false;
}

}  // namespace

const char* unicode_version() {
  return kUnicodeVersion;
}

bool is_ascii(std::string_view s) {
  for (unsigned char c : s) {
    if (c >= 0x80) return false;
  }
  return true;
}

bool decode_utf8(std::string_view s, std::u32string& out) {
  out.clear();
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const unsigned char* end = p + s.size();
  while (p < end) {
    const unsigned char b0 = *p;
    if (b0 < 0x80) {
      out.push_back(b0);
      ++p;
      continue;
    }
    int len;
    char32_t cp;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      len = 2;
      cp = b0 & 0x1F;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      len = 3;
      cp = b0 & 0x0F;
      if (b0 == 0xE0) lo = 0xA0;  // overlong
      if (b0 == 0xED) hi = 0x9F;  // surrogates
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      len = 4;
      cp = b0 & 0x07;
      if (b0 == 0xF0) lo = 0x90;  // overlong
      if (b0 == 0xF4) hi = 0x8F;  // above U+10FFFF
    } else {
      return false;  // continuation byte, C0/C1 overlong lead, F5..FF
    }
    if (end - p < len) return false;
    for (int k = 1; k < len; ++k) {
      const unsigned char b = p[k];
      if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return false;
      cp = (cp << 6) | (b & 0x3F);
    }
    out.push_back(cp);
    p += len;
  }
  return true;
}

void append_utf8(std::u32string_view cps, std::string& out) {
  for (char32_t cp : cps) {
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }
}

bool valid_utf8(std::string_view s) {
  if (is_ascii(s)) return true;
  std::u32string tmp;
  return decode_utf8(s, tmp);
}

uint8_t combining_class(char32_t cp) {
  if (cp < 0x300) return 0;
  return run_lookup(kCccRuns, cp);
}

bool is_mark(char32_t cp) {
  return (run_lookup(kFlagRuns, cp) & kFlagMark) != 0;
}

bool is_space_separator(char32_t cp) {
  return (run_lookup(kFlagRuns, cp) & kFlagSpaceSeparator) != 0;
}

void nfc_in_place(std::u32string& cps) {
  // 1. Full canonical decomposition.
  std::u32string d;
  d.reserve(cps.size() + cps.size() / 2);
  for (char32_t cp : cps) {
    if (cp < 0xC0) {
      d.push_back(cp);  // nothing below U+00C0 decomposes
    } else {
      decompose_into(cp, d, 0);
    }
  }
  // 2. Canonical ordering: stable sort of every run of non-starters by ccc.
  // (A sort per run keeps hostile runs of many marks O(n log n).)
  const auto by_ccc = [](char32_t a, char32_t b) {
    return combining_class(a) < combining_class(b);
  };
  for (size_t i = 0; i < d.size();) {
    if (combining_class(d[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i + 1;
    while (j < d.size() && combining_class(d[j]) != 0)
      ++j;
    if (j - i > 1) std::stable_sort(d.begin() + i, d.begin() + j, by_ccc);
    i = j;
  }
  // 3. Canonical composition (UAX #15 section 1.3).
  if (!d.empty()) {
    size_t starter_pos = 0;
    char32_t starter = d[0];
    int last_cc = combining_class(starter) == 0 ? 0 : 256;
    size_t out = 1;
    for (size_t i = 1; i < d.size(); ++i) {
      const char32_t c = d[i];
      const int cc = combining_class(c);
      if (last_cc < cc || last_cc == 0) {
        const char32_t composite = compose_pair(starter, c);
        if (composite != 0) {
          d[starter_pos] = starter = composite;
          continue;
        }
      }
      if (cc == 0) {
        starter_pos = out;
        starter = c;
      }
      last_cc = cc;
      d[out++] = c;
    }
    d.resize(out);
  }
  cps.swap(d);
}

Result<std::string> nfc(std::string_view s) {
  if (is_ascii(s)) return std::string(s);  // ASCII is always NFC
  std::u32string cps;
  if (!decode_utf8(s, cps)) return make_error("invalid UTF-8");
  nfc_in_place(cps);
  std::string out;
  out.reserve(s.size());
  append_utf8(cps, out);
  return out;
}

std::u32string to_lower(std::u32string_view cps) {
  std::u32string out;
  out.reserve(cps.size());
  for (size_t i = 0; i < cps.size(); ++i) {
    const char32_t cp = cps[i];
    if (cp < 0x80) {
      out.push_back(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
      continue;
    }
    if (cp == 0x03A3) {
      out.push_back(final_sigma(cps, i) ? 0x03C2 : 0x03C3);
      continue;
    }
    bool special = false;
    for (const SpecialLower& sl : kLowerSpecial) {
      if (sl.cp == cp) {
        for (char32_t t : sl.to) {
          if (t != 0) out.push_back(t);
        }
        special = true;
        break;
      }
    }
    if (special) continue;
    const DeltaRun* r = delta_lookup(kLowerRuns, cp);
    out.push_back(r ? static_cast<char32_t>(static_cast<int32_t>(cp) + r->delta) : cp);
  }
  return out;
}

Result<std::string> to_lower(std::string_view s) {
  if (is_ascii(s)) {
    std::string out(s);
    for (char& c : out) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    }
    return out;
  }
  std::u32string cps;
  if (!decode_utf8(s, cps)) return make_error("invalid UTF-8");
  std::string out;
  out.reserve(s.size());
  append_utf8(to_lower(cps), out);
  return out;
}

void width_map_in_place(std::u32string& cps) {
  for (char32_t& cp : cps) {
    if (cp < 0x3000) continue;  // no <wide>/<narrow> forms below U+3000
    const DeltaRun* r = delta_lookup(kWidthRuns, cp);
    if (r) cp = static_cast<char32_t>(static_cast<int32_t>(cp) + r->delta);
  }
}

PrecisProp precis_property(char32_t cp) {
  return static_cast<PrecisProp>(run_lookup(kPrecisRuns, cp));
}

BidiClass bidi_class(char32_t cp) {
  return static_cast<BidiClass>(run_lookup(kBidiRuns, cp));
}

Status precis_check(std::u32string_view s, StringClass cls) {
  for (size_t i = 0; i < s.size(); ++i) {
    const char32_t cp = s[i];
    switch (precis_property(cp)) {
      case PrecisProp::kPvalid:
        break;
      case PrecisProp::kFreePval:
        if (cls == StringClass::kIdentifier) {
          return make_error(describe(cp) +
                            " is not allowed in an identifier (space, symbol, punctuation or "
                            "compatibility character)");
        }
        break;
      case PrecisProp::kUnassigned:
        return make_error(describe(cp) + " is unassigned in Unicode " + kUnicodeVersion);
      case PrecisProp::kDisallowed:
        return make_error(describe(cp) + " is not allowed (" + disallowed_reason(cp) + ")");
      case PrecisProp::kContextJ:
      case PrecisProp::kContextO:
        if (!context_rule_ok(s, i)) {
          return make_error(describe(cp) + " is not allowed in this context (RFC 5892)");
        }
        break;
    }
  }
  return {};
}

bool has_rtl(std::u32string_view s) {
  for (char32_t cp : s) {
    if (cp < 0x590) continue;  // nothing below U+0590 is R, AL or AN
    const BidiClass b = bidi_class(cp);
    if (b == BidiClass::kR || b == BidiClass::kAL || b == BidiClass::kAN) return true;
  }
  return false;
}

bool bidi_rule_ok(std::u32string_view s) {
  if (s.empty()) return true;
  using B = BidiClass;
  const B first = bidi_class(s[0]);
  const bool rtl = first == B::kR || first == B::kAL;
  if (!rtl && first != B::kL) return false;  // condition 1
  bool has_en = false, has_an = false;
  for (char32_t cp : s) {
    const B b = bidi_class(cp);
    has_en |= b == B::kEN;
    has_an |= b == B::kAN;
    bool allowed;
    if (rtl) {  // condition 2
      allowed = b == B::kR || b == B::kAL || b == B::kAN || b == B::kEN || b == B::kES ||
                b == B::kCS || b == B::kET || b == B::kON || b == B::kBN || b == B::kNSM;
    } else {  // condition 5
      allowed = b == B::kL || b == B::kEN || b == B::kES || b == B::kCS || b == B::kET ||
                b == B::kON || b == B::kBN || b == B::kNSM;
    }
    if (!allowed) return false;
  }
  // Conditions 3 and 6: the last non-NSM code point.
  size_t k = s.size();
  while (k > 0 && bidi_class(s[k - 1]) == B::kNSM)
    --k;
  if (k == 0) return false;
  const B last = bidi_class(s[k - 1]);
  if (rtl) {
    if (last != B::kR && last != B::kAL && last != B::kEN && last != B::kAN) return false;
    if (has_en && has_an) return false;  // condition 4
  } else if (last != B::kL && last != B::kEN) {
    return false;
  }
  return true;
}

}  // namespace hearth::unicode
