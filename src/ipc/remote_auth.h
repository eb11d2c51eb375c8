// Authentication across the process boundary.
//
// Reactor side: an xmpp::Authenticator (auth.h) that relays each SASL
// message to the auth worker over a Channel. The reactor sees only
// challenges, success with the username, or failure. A request that fails
// (worker died, timed out, answered nonsense) ends the exchange with
// <temporary-auth-failure/> (RFC 6120 §6.5.10); an exchange begun with a
// worker that has since been restarted fails the same way.
//
// Worker side: AuthService turns one request frame into one reply frame,
// synchronously, holding the SASL server states (sasl.h) and the account
// store. The auth process wraps it in its main loop (or calls serve()).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>

#include "core/result.h"
#include "ipc/channel.h"
#include "ipc/frame.h"
#include "xmpp/auth.h"
#include "xmpp/auth_limits.h"
#include "xmpp/sasl.h"

namespace hearth::xmpp {
class AccountStore;
}

namespace hearth::ipc {

struct RemoteAuthOptions {
  // Deadline of each request to the auth worker. A SCRAM step costs the
  // worker one HMAC, a PLAIN check one PBKDF2 run of the account's count.
  int timeout_ms = 5000;
};

// `auth_channel` must outlive the authenticator.
std::unique_ptr<xmpp::Authenticator> make_remote_authenticator(Channel* auth_channel);
std::unique_ptr<xmpp::Authenticator> make_remote_authenticator(Channel* auth_channel,
                                                               const RemoteAuthOptions& options);

struct AuthServiceOptions {
  // Iteration count of the fake SCRAM credentials for unknown users (set it
  // to the count new accounts get, as LocalAuthOptions).
  uint32_t fake_iterations = 10000;
  // Open exchanges kept; beyond it the oldest is dropped (its next step
  // fails). A reactor that never finishes exchanges cannot grow the worker.
  size_t max_exchanges = 1024;
  // Test hook, passed to the SASL servers.
  std::string server_nonce_for_testing;
  // Failed-login limits ([auth] max_failures, failure_window, ban_time).
  xmpp::AuthLimitOptions limits;
  // Test hook: the limiter's clock (unix milliseconds); empty = wall clock.
  xmpp::AuthLimiter::Clock clock;
};

class AuthService {
 public:
  explicit AuthService(xmpp::AccountStore* store);
  AuthService(xmpp::AccountStore* store, const AuthServiceOptions& options);

  // Answers one request: SaslStart / SaslStep / SaslAbort -> SaslReply,
  // AccountRequest -> AccountReply, with the request's id. An error means
  // the request itself was unacceptable (unknown type, undecodable, fds
  // attached): a protocol violation, fatal for the worker.
  Result<Frame> handle(const Frame& request);
  // The same; *delay_ms says how long to hold the reply back (a failed
  // login's back-off, auth_limits.h). The caller keeps serving others
  // meanwhile: the worker must not sleep.
  Result<Frame> handle(const Frame& request, uint64_t* delay_ms);

  // A blocking serve loop over `fd` for the auth process: returns {} when
  // the reactor closes its end, an error on a protocol violation or a
  // failed send (the process should then exit and be restarted).
  Status serve(int fd);

  size_t exchanges() const { return exchanges_.size(); }
  xmpp::AuthLimiter& limiter() { return *limiter_; }

 private:
  struct Exchange {
    std::unique_ptr<xmpp::SaslServer> server;
    std::string peer_ip;
    std::string mechanism;
  };
  // Counts the outcome of a finished exchange; returns the reply's delay.
  uint64_t account_outcome(const Exchange& ex, const xmpp::SaslReply& r);
  Result<Frame> sasl_start(const Frame& request, uint64_t* delay_ms);
  Result<Frame> sasl_step(const Frame& request, uint64_t* delay_ms);
  Result<Frame> sasl_abort(const Frame& request);
  Result<Frame> account(const Frame& request);

  xmpp::AccountStore* store_;
  AuthServiceOptions options_;
  uint64_t next_exchange_ = 1;
  std::map<uint64_t, Exchange> exchanges_;               // oldest first
  std::unique_ptr<xmpp::FailureTable> memory_failures_;  // when the store keeps none
  std::unique_ptr<xmpp::AuthLimiter> limiter_;
};

}  // namespace hearth::ipc
