// The keyholder's half of remote TLS signing: one private key (ECDSA or
// RSA) loaded from a PEM file, signing SignRequests exactly as wolfSSL's own
// handshake code would with the key loaded (see tls.h SignRequest).
#pragma once

#include <memory>
#include <string>

#include "core/result.h"
#include "net/tls.h"

namespace hearth::net {

class KeySigner {
 public:
  enum class Type { kEcdsa, kRsa };

  // Reads an unencrypted PEM private key: SEC1 "EC PRIVATE KEY", PKCS#1
  // "RSA PRIVATE KEY" or PKCS#8 "PRIVATE KEY" holding either. The key lives
  // in libsodium guarded memory (mlocked where the limit allows, excluded
  // from core dumps); the file's bytes are wiped after decoding.
  static Result<std::unique_ptr<KeySigner>> load(const std::string& key_path);
  ~KeySigner();  // frees and wipes the key
  KeySigner(const KeySigner&) = delete;
  KeySigner& operator=(const KeySigner&) = delete;

  // The signature for `req`, or an error for a request this key cannot
  // serve (wrong algorithm for the key type, digest length not matching the
  // hash, PSS with a hash TLS never uses). RSA signatures are verified with
  // the public key before they leave, so a faulty RSA-CRT computation never
  // discloses the key (Boneh-DeMillo-Lipton).
  Result<std::string> sign(const SignRequest& req);

  Type type() const { return type_; }
  // DER SubjectPublicKeyInfo of the key (wolfCrypt encoding).
  const std::string& public_key_der() const { return public_der_; }
  // OK when the first certificate of the PEM file carries this key's
  // public key.
  Status check_certificate(const std::string& cert_path) const;

 private:
  struct Secret;  // key and RNG, in sodium_malloc memory
  KeySigner() = default;
  Secret* secret_ = nullptr;
  Type type_ = Type::kEcdsa;
  std::string public_der_;
};

}  // namespace hearth::net
