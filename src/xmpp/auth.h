// Authentication as the stream sees it: an asynchronous service. The stream
// relays SASL messages and learns only challenge / success (with the
// authenticated username) / failure. The SASL server state lives behind this
// interface so that it can move into the sandboxed auth worker without
// touching callers. Callbacks are never invoked from inside the call that
// started the request (always from a later loop turn).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::xmpp {

// What the TLS layer can give for SCRAM-*-PLUS (RFC 5056/5929/9266).
struct ChannelBindings {
  bool tls = false;                  // the stream is encrypted
  std::string tls_exporter;          // 32 bytes per RFC 9266, or empty if unavailable
  std::string tls_server_end_point;  // RFC 5929 §4.1 hash of our certificate, or empty
  // Not binding data but per-stream context the exchange needs: the stream's
  // (normalised) host, so that an authzid "user@domain" can be accepted
  // (RFC 6120 §6.3.8). When empty only an authzid equal to the username is.
  std::string domain;
  // The client's IP address ("192.0.2.1", "2001:db8::1"; no port), for the
  // per-IP failed-login limits (issue 6). Empty in tests that have none.
  std::string peer_ip;
  bool any() const { return !tls_exporter.empty() || !tls_server_end_point.empty(); }
};

struct SaslReply {
  enum class Kind { kChallenge, kSuccess, kFailure };
  Kind kind = Kind::kFailure;
  std::string data;       // raw bytes (the stream base64-encodes); additional data with success
  std::string condition;  // RFC 6120 §6.5 condition on failure: "not-authorized", ...
  std::string username;   // normalised localpart on success
};

using SaslCallback = std::function<void(SaslReply)>;
// Runs a function on a later loop turn (the reactor's Loop::post).
using Poster = std::function<void(std::function<void()>)>;

class Authenticator {
 public:
  virtual ~Authenticator() = default;

  // Mechanisms to offer, most preferred first. Nothing at all without TLS
  // (require_encryption); -PLUS only when channel binding data exists.
  virtual std::vector<std::string> mechanisms(const ChannelBindings& cb) const = 0;

  // Start an exchange. Returns its id (never 0). `initial_response` is the
  // decoded initial response ("" when absent or "=").
  virtual uint64_t start(std::string_view mechanism, std::string_view initial_response,
                         const ChannelBindings& cb, SaslCallback done) = 0;
  // Next client response in exchange `id`.
  virtual void step(uint64_t id, std::string_view response, SaslCallback done) = 0;
  // Forget an exchange (client <abort/>, stream closed). Its callback, if
  // pending, is not called.
  virtual void abort(uint64_t id) = 0;
};

class AccountStore;

struct LocalAuthOptions {
  // Iteration count of the fake SCRAM credentials shown for unknown users;
  // set it to the count new accounts get so both look alike.
  uint32_t fake_iterations = 10000;
};

// In-process implementation over accounts.mdb (to move into the auth worker).
std::unique_ptr<Authenticator> make_local_authenticator(AccountStore* accounts, Poster post);
std::unique_ptr<Authenticator> make_local_authenticator(AccountStore* accounts, Poster post,
                                                        const LocalAuthOptions& options);

}  // namespace hearth::xmpp
