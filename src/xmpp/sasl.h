// Server side of the SASL mechanisms we offer (SCRAM-SHA-1/-256 with and
// without -PLUS, PLAIN) as state machines with no I/O: a message in, a reply
// out. Credentials come through a lookup function so the machine runs the
// same in-process and in the auth worker.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "xmpp/account_store.h"
#include "xmpp/auth.h"

namespace hearth::xmpp {

enum class SaslMechanism { kScramSha256Plus, kScramSha1Plus, kScramSha256, kScramSha1, kPlain };

std::string_view sasl_mechanism_name(SaslMechanism m);
std::optional<SaslMechanism> sasl_mechanism_from_name(std::string_view name);

// Mechanisms to offer on a stream with `cb`, most preferred first: none
// before TLS, -PLUS only with channel binding data.
std::vector<std::string> sasl_mechanisms(const ChannelBindings& cb);

// The mechanism to run for the client's choice `name`, or (mechanism empty)
// the failure condition: "encryption-required" before TLS,
// "invalid-mechanism" for anything not offered.
struct SaslSelection {
  std::optional<SaslMechanism> mechanism;
  std::string condition;
};
SaslSelection sasl_select(std::string_view name, const ChannelBindings& cb);

// Longest client message accepted (after base64 decoding).
inline constexpr size_t kSaslMaxMessage = 4096;

// Account lookup by normalised username: nullopt if there is no such
// account, an error if the store failed (-> "temporary-auth-failure").
using CredentialLookup =
    std::function<Result<std::optional<AccountRecord>>(std::string_view username)>;

struct SaslServerOptions {
  // Iteration count of the fake credentials for unknown users.
  uint32_t fake_iterations = 10000;
  // Test hook: a fixed server nonce part instead of 24 random bytes.
  std::string server_nonce_for_testing;
};

class SaslServer {
 public:
  virtual ~SaslServer() = default;

  // One client message ("" for an absent initial response). After a
  // success or failure every further step fails with "malformed-request".
  SaslReply step(std::string_view message);
  bool finished() const { return finished_; }
  // The normalised username the client authenticates as, once it has sent
  // one that normalises ("" before); for the failed-login counters.
  const std::string& claimed_username() const { return claimed_username_; }

 protected:
  virtual SaslReply do_step(std::string_view message) = 0;
  void set_claimed_username(const std::string& name) { claimed_username_ = name; }

 private:
  bool finished_ = false;
  std::string claimed_username_;
};

std::unique_ptr<SaslServer> make_sasl_server(SaslMechanism mechanism, const ChannelBindings& cb,
                                             CredentialLookup lookup,
                                             const SaslServerOptions& options);

// Reply helpers.
SaslReply sasl_challenge(std::string data);
SaslReply sasl_failure(std::string condition);
SaslReply sasl_success(std::string data, std::string username);

}  // namespace hearth::xmpp
