// SCRAM (RFC 5802, RFC 7677) with channel binding (RFC 5056, RFC 9266):
// credential derivation and the server side of the exchange, as pure
// functions and a state machine with no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace hearth::xmpp {

enum class ScramHash { kSha1, kSha256 };
size_t scram_hash_size(ScramHash h);  // 20 or 32

struct ScramCredentials {
  std::string salt;  // raw bytes
  uint32_t iterations = 0;
  std::string stored_key;  // raw bytes, hash size
  std::string server_key;  // raw bytes, hash size
};

// SaltedPassword = Hi(password, salt, i); StoredKey = H(HMAC(SP, "Client Key"));
// ServerKey = HMAC(SP, "Server Key"). `password` already prepared.
Result<ScramCredentials> scram_derive(ScramHash h, std::string_view password,
                                      std::string_view salt, uint32_t iterations);

// RFC 8265 §4.2 OpaqueString preparation of a password (replaces SASLprep).
Result<std::string> prepare_password(std::string_view password);

}  // namespace hearth::xmpp
