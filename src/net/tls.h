// TLS with wolfSSL over memory buffers: the connection reads ciphertext from
// the socket into the session and writes what the session queues, so TLS
// never blocks and never touches a file descriptor. TLS 1.2 and 1.3 only,
// ECDHE + AEAD suites only, no compression, no renegotiation.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

struct WOLFSSL_CTX;
struct WOLFSSL;

namespace hearth::net {

// Create a self-signed ECDSA P-256 certificate for `domain` (SAN dNSName
// domain and *.domain) at cert_path/key_path (PEM, key mode 0600) unless
// both files already exist.
Status ensure_self_signed(const std::string& domain, const std::string& cert_path,
                          const std::string& key_path);

// "AB:CD:..." SHA-256 of the DER certificate in a PEM file.
Result<std::string> certificate_fingerprint(const std::string& cert_path);

// Frees wolfSSL's fixed-point ECC tables (FP_ECC, on in Debian's build).
// wolfSSL builds a table of about 820 KB for every curve point it has
// multiplied twice, up to 15 of them per process: start-up work (the
// self-signed certificate, the key check, the self-test handshake) leaves
// four behind in the reactor (3.3 MB) and one in the keyholder. Called once
// start-up is done; a table comes back only where the same point keeps being
// used (the generator in the keyholder's ECDSA signing, where it makes a
// signature 10 times faster: 50 us against 580 us).
void release_ecc_tables();

// One signature the handshake needs from the holder of the private key.
// wolfSSL's PK callbacks hand us a digest (ECDSA, RSA-PSS) or a DER
// DigestInfo (RSA PKCS#1 v1.5); TlsContext reduces all three to (algorithm,
// hash, digest), so the signer never signs a block the caller chose: it
// encodes and pads the digest itself, exactly as wolfSSL would.
//   kEcdsa:    wc_ecc_sign_hash(digest) -> DER Ecdsa-Sig-Value (RFC 3279).
//              wolfSSL does not say which hash it used; the digest length
//              tells (20/28/32/48/64 bytes).
//   kRsaPkcs1: DigestInfo(hash, digest) (RFC 8017 §9.2), then
//              wc_RsaSSL_Sign (EMSA-PKCS1-v1_5 type 1 padding). TLS 1.2 only.
//   kRsaPss:   wc_RsaPSS_Sign(digest, hash, MGF1 with the same hash, salt
//              length = hash length) as RFC 8446 §4.2.3 requires.
//              SHA-256/384/512 only.
// The wire values of both enums are fixed: the IPC encodes them as one byte.
struct SignRequest {
  enum class Algorithm : uint8_t { kEcdsa = 1, kRsaPkcs1 = 2, kRsaPss = 3 };
  enum class Hash : uint8_t { kSha1 = 1, kSha224 = 2, kSha256 = 3, kSha384 = 4, kSha512 = 5 };
  Algorithm algorithm = Algorithm::kEcdsa;
  Hash hash_type = Hash::kSha256;
  std::string digest;  // exactly digest_size(hash_type) bytes
};

// Bytes of a `hash` digest; 0 for a value outside the enum.
size_t digest_size(SignRequest::Hash hash);

// Returns the signature: ECDSA as DER, RSA as modulus-length big-endian
// bytes. Called synchronously inside the handshake (wolfSSL here has no
// async crypto), so it must answer or fail within a bounded time.
using Signer = std::function<Result<std::string>(const SignRequest&)>;

struct RemoteKey;

class TlsContext {
 public:
  ~TlsContext();
  // The certificate chain and its private key, both loaded here.
  static Result<std::unique_ptr<TlsContext>> create_server(const std::string& cert_path,
                                                           const std::string& key_path);
  // The certificate chain only: every private-key operation of a handshake
  // goes to `signer` (the keyholder process). No key file is opened and no
  // private key is ever in this process. ECDSA and RSA certificates only.
  // The start-up self-test runs through `signer`, so it must already answer.
  static Result<std::unique_ptr<TlsContext>> create_server_remote(const std::string& cert_path,
                                                                  Signer signer);
  // True for a create_server_remote context.
  bool remote_key() const { return remote_ != nullptr; }
  const std::string& fingerprint_sha256() const { return fingerprint_; }
  // RFC 5929 §4.1: hash of our certificate (SHA-256 for SHA-1/SHA-256 signed certs).
  const std::string& server_end_point() const { return end_point_; }
  WOLFSSL_CTX* raw() const { return ctx_; }

 private:
  TlsContext() = default;
  static Result<std::unique_ptr<TlsContext>> create_common();
  static bool self_test(const TlsContext& ctx, bool tls12, std::string* why);
  Status load_certificate(const std::string& cert_path);
  Status hash_certificate(const std::string& cert_path);
  WOLFSSL_CTX* ctx_ = nullptr;
  std::unique_ptr<RemoteKey> remote_;
  std::string fingerprint_;
  std::string end_point_;
};

class TlsSession {
 public:
  enum class State { kHandshaking, kOpen, kClosed, kError };

  // `direct`: XEP-0368 direct TLS; ALPN "xmpp-client" is selected when the
  // client offers it (a client offering only other protocols is refused).
  TlsSession(const TlsContext& ctx, bool direct);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Ciphertext received from the peer.
  void feed(std::string_view ciphertext);
  // Advance the handshake and decrypt; appends plaintext to *out.
  // Returns the state afterwards.
  State read(std::string* out);
  // Encrypt application data (queued into outgoing()). Only in kOpen:
  // writing during the handshake is a caller bug and fails the session.
  State write(std::string_view plaintext);
  // Queue close_notify (once; only when the handshake has completed).
  void shutdown();

  // Ciphertext waiting to go to the socket; the caller removes what it sent.
  std::string& outgoing() { return out_; }

  State state() const { return state_; }
  const std::string& error() const { return error_; }
  std::string version() const;  // "TLSv1.3"; empty until kOpen
  std::string cipher() const;
  // RFC 9266 tls-exporter (32 bytes); empty when not allowed (TLS 1.2
  // without extended master secret) or before the handshake completes.
  // Derived once when the handshake completes: the secrets it comes from
  // are freed then.
  std::string exporter_binding() const;

 private:
  static int recv_cb(WOLFSSL*, char*, int, void*);
  static int send_cb(WOLFSSL*, char*, int, void*);
  void compact_input();
  void derive_exporter();
  State fail(const char* what, int err);
  WOLFSSL* ssl_ = nullptr;
  std::string in_;
  size_t in_pos_ = 0;
  std::string out_;
  State state_ = State::kHandshaking;
  std::string error_;
  bool shutdown_sent_ = false;
  bool server_hello_seen_ = false;
  bool ems_ = false;  // TLS 1.2 extended master secret (RFC 7627) in use
  bool has_exporter_ = false;
  std::array<unsigned char, 32> exporter_{};  // RFC 9266 tls-exporter, wiped on destruction
  std::string sign_error_;                    // why the remote signer failed, if it did
};

}  // namespace hearth::net
