// Base64 (RFC 4648 §4, standard alphabet, with padding). The decoder is
// strict, as SASL needs (RFC 6120 §6.4.2 "incorrect-encoding"): no
// whitespace, no characters outside the alphabet, padding only at the end
// and exactly as long as needed, and zero pad bits (RFC 4648 §3.5), so every
// byte string has exactly one accepted encoding.
#pragma once

#include <string>
#include <string_view>

#include "core/result.h"

namespace hearth {

std::string base64_encode(std::string_view bytes);
Result<std::string> base64_decode(std::string_view text);

}  // namespace hearth
