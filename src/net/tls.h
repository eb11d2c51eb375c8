// TLS with wolfSSL over memory buffers: the connection reads ciphertext from
// the socket into the session and writes what the session queues, so TLS
// never blocks and never touches a file descriptor. TLS 1.2 and 1.3 only,
// ECDHE + AEAD suites only, no compression, no renegotiation.
#pragma once

#include <cstdint>
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

class TlsContext {
 public:
  ~TlsContext();
  static Result<std::unique_ptr<TlsContext>> create_server(const std::string& cert_path,
                                                           const std::string& key_path);
  const std::string& fingerprint_sha256() const { return fingerprint_; }
  // RFC 5929 §4.1: hash of our certificate (SHA-256 for SHA-1/SHA-256 signed certs).
  const std::string& server_end_point() const { return end_point_; }
  WOLFSSL_CTX* raw() const { return ctx_; }

 private:
  TlsContext() = default;
  static bool self_test(const TlsContext& ctx, std::string* why);
  WOLFSSL_CTX* ctx_ = nullptr;
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
  std::string exporter_binding() const;

 private:
  static int recv_cb(WOLFSSL*, char*, int, void*);
  static int send_cb(WOLFSSL*, char*, int, void*);
  void compact_input();
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
};

}  // namespace hearth::net
