// The Unicode pieces JIDs (RFC 7622/8265) and SASLprep's successor
// (RFC 8265 OpaqueString) need: UTF-8 validation, NFC, lowercase mapping.
// Tables are generated from the Unicode Character Database
// (tools/gen_unicode.py) and committed.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.h"

namespace hearth::unicode {

bool is_ascii(std::string_view s);
// Well-formed UTF-8: no overlongs, no surrogates, nothing above U+10FFFF.
bool valid_utf8(std::string_view s);
// Canonical composition (NFC). Fails on invalid UTF-8.
Result<std::string> nfc(std::string_view s);
// Unicode toLowerCase (full mapping). Fails on invalid UTF-8.
Result<std::string> to_lower(std::string_view s);

// ---- Code-point level pieces (added for PRECIS / JIDs) ----

// Unicode version the generated tables come from (e.g. "14.0.0").
const char* unicode_version();

// Decodes well-formed UTF-8 into `out` (replacing its contents). False on any
// ill-formed input: overlong forms, surrogates, values above U+10FFFF,
// truncated sequences, stray continuation bytes.
bool decode_utf8(std::string_view s, std::u32string& out);
// Appends the UTF-8 form of `cps` (which must hold Unicode scalar values).
void append_utf8(std::u32string_view cps, std::string& out);

uint8_t combining_class(char32_t cp);
// General category M* (Mn, Mc, Me).
bool is_mark(char32_t cp);
// General category Zs (U+0020, U+00A0, U+3000, ...).
bool is_space_separator(char32_t cp);
// Canonical decomposition, canonical ordering and canonical composition.
void nfc_in_place(std::u32string& cps);
// Full lowercase mapping, identical to Python's str.lower(): SpecialCasing
// unconditional mappings (U+0130 -> "i\u0307") and the Final_Sigma context.
std::u32string to_lower(std::u32string_view cps);
// RFC 8265 width mapping: fullwidth and halfwidth forms (<wide>/<narrow>
// decompositions) are replaced by their decomposition.
void width_map_in_place(std::u32string& cps);

// RFC 8264 section 8 derived property. kFreePval stands for "ID_DIS or
// FREE_PVAL": valid in FreeformClass, disallowed in IdentifierClass.
enum class PrecisProp : uint8_t {
  kUnassigned = 0,
  kPvalid = 1,
  kFreePval = 2,
  kDisallowed = 3,
  kContextJ = 4,
  kContextO = 5,
};
PrecisProp precis_property(char32_t cp);

enum class StringClass { kIdentifier, kFreeform };
// Every code point must be valid in the class; CONTEXTJ/CONTEXTO code points
// must satisfy their RFC 5892 Appendix A rule (ZWNJ only in its virama form:
// Joining_Type is not in our tables, so the other form fails closed). The
// error says which code point failed and why.
Status precis_check(std::u32string_view s, StringClass cls);

// Bidi_Class; the order is BIDI_CLASSES in tools/gen_unicode.py.
enum class BidiClass : uint8_t {
  kL,
  kR,
  kAL,
  kEN,
  kES,
  kET,
  kAN,
  kCS,
  kNSM,
  kBN,
  kB,
  kS,
  kWS,
  kON,
  kLRE,
  kLRO,
  kRLE,
  kRLO,
  kPDF,
  kLRI,
  kRLI,
  kFSI,
  kPDI,
};
BidiClass bidi_class(char32_t cp);
// True if the string holds a code point of Bidi class R, AL or AN.
bool has_rtl(std::u32string_view s);
// RFC 5893 section 2 conditions 1-6 for one label / string.
bool bidi_rule_ok(std::u32string_view s);

}  // namespace hearth::unicode
