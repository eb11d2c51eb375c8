// The Unicode pieces JIDs (RFC 7622/8265) and SASLprep's successor
// (RFC 8265 OpaqueString) need: UTF-8 validation, NFC, lowercase mapping.
// Tables are generated from the Unicode Character Database
// (tools/gen_unicode.py) and committed.
#pragma once

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

}  // namespace hearth::unicode
