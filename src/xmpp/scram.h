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
Result<ScramCredentials> scram_derive(ScramHash h, std::string_view password, std::string_view salt,
                                      uint32_t iterations);

// RFC 8265 §4.2 OpaqueString preparation of a password (replaces SASLprep).
Result<std::string> prepare_password(std::string_view password);

// Bounds on the iteration count we derive with or accept from storage.
inline constexpr uint32_t kScramMinIterations = 1;
inline constexpr uint32_t kScramMaxIterations = 100000000;

// H(data) and HMAC(key, data) for the SCRAM hash.
Result<std::string> scram_hash(ScramHash h, std::string_view data);
Result<std::string> scram_hmac(ScramHash h, std::string_view key, std::string_view data);

// Server side of the proof check (RFC 5802 §3): ClientSignature =
// HMAC(StoredKey, AuthMessage), ClientKey = proof XOR ClientSignature,
// accepted iff H(ClientKey) == StoredKey (constant-time compare).
bool scram_verify_proof(ScramHash h, std::string_view stored_key, std::string_view auth_message,
                        std::string_view client_proof);
// ServerSignature = HMAC(ServerKey, AuthMessage), raw bytes.
Result<std::string> scram_server_signature(ScramHash h, std::string_view server_key,
                                           std::string_view auth_message);

// saslname escaping (RFC 5802 §5.1): "," -> "=2C", "=" -> "=3D".
std::string scram_escape_saslname(std::string_view name);
// The reverse; fails on any other "=" sequence, on NUL and on "".
Result<std::string> scram_unescape_saslname(std::string_view saslname);

// --- Client side (tests and tools; the server never needs the password) ---

struct ScramClientProof {
  std::string client_proof;      // raw bytes, hash size
  std::string server_signature;  // raw bytes the server must return in v=
};
// `password` already prepared.
Result<ScramClientProof> scram_client_proof(ScramHash h, std::string_view password,
                                            std::string_view salt, uint32_t iterations,
                                            std::string_view auth_message);

struct ScramClientFinal {
  std::string message;       // client-final-message
  std::string server_final;  // the server-final-message to expect: "v=..."
};
// Answers `server_first` for the full `client_first` message (gs2 header
// included); `cb_data` is the channel binding data for a "p=" header.
// Checks that the server nonce extends ours and the iteration count bounds.
Result<ScramClientFinal> scram_client_final(ScramHash h, std::string_view password,
                                            std::string_view client_first,
                                            std::string_view server_first,
                                            std::string_view cb_data);

}  // namespace hearth::xmpp
