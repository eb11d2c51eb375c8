// The in-process Authenticator: SASL state machines over the account store.
// Work happens in the call; the reply is delivered on a later loop turn so
// that callers never see a callback from inside start()/step().
#include <memory>
#include <unordered_map>
#include <utility>

#include "xmpp/account_store.h"
#include "xmpp/auth.h"
#include "xmpp/sasl.h"

namespace hearth::xmpp {
namespace {

class LocalAuthenticator final : public Authenticator {
 public:
  LocalAuthenticator(AccountStore* accounts, Poster post, const LocalAuthOptions& options)
      : accounts_(accounts), post_(std::move(post)), state_(std::make_shared<State>()) {
    server_options_.fake_iterations = options.fake_iterations;
  }

  std::vector<std::string> mechanisms(const ChannelBindings& cb) const override {
    return sasl_mechanisms(cb);
  }

  uint64_t start(std::string_view mechanism, std::string_view initial_response,
                 const ChannelBindings& cb, SaslCallback done) override {
    uint64_t id = state_->next_id++;
    Exchange& ex = state_->exchanges[id];
    SaslSelection sel = sasl_select(mechanism, cb);
    SaslReply reply;
    if (sel.mechanism) {
      AccountStore* accounts = accounts_;
      CredentialLookup lookup =
          [accounts](std::string_view username) -> Result<std::optional<AccountRecord>> {
        if (accounts == nullptr) return make_error("no account store");
        return accounts->get(username);
      };
      ex.server = make_sasl_server(*sel.mechanism, cb, std::move(lookup), server_options_);
      reply = ex.server->step(initial_response);
    } else {
      reply = sasl_failure(sel.condition);
    }
    deliver(id, std::move(reply), std::move(done));
    return id;
  }

  void step(uint64_t id, std::string_view response, SaslCallback done) override {
    auto it = state_->exchanges.find(id);
    if (it == state_->exchanges.end()) {
      // Finished or aborted: nothing to continue.
      post_([done = std::move(done)]() mutable { done(sasl_failure("malformed-request")); });
      return;
    }
    Exchange& ex = it->second;
    SaslReply reply =
        ex.server && !ex.finished ? ex.server->step(response) : sasl_failure("malformed-request");
    deliver(id, std::move(reply), std::move(done));
  }

  void abort(uint64_t id) override { state_->exchanges.erase(id); }

 private:
  struct Exchange {
    std::unique_ptr<SaslServer> server;  // null when start() already failed
    bool finished = false;               // success/failure computed, not yet delivered
    uint64_t generation = 0;             // of the reply most recently posted
  };
  // Shared with posted closures so that they can tell whether the exchange
  // (or the authenticator itself) is still there when they run.
  struct State {
    uint64_t next_id = 1;
    std::unordered_map<uint64_t, Exchange> exchanges;
  };

  void deliver(uint64_t id, SaslReply reply, SaslCallback done) {
    Exchange& ex = state_->exchanges[id];
    if (reply.kind != SaslReply::Kind::kChallenge) ex.finished = true;
    uint64_t generation = ++ex.generation;
    std::weak_ptr<State> weak = state_;
    post_([weak, id, generation, reply = std::move(reply), done = std::move(done)]() mutable {
      auto state = weak.lock();
      if (!state) return;
      auto it = state->exchanges.find(id);
      // Aborted, or superseded by a later step: the caller no longer waits.
      if (it == state->exchanges.end() || it->second.generation != generation) return;
      if (reply.kind != SaslReply::Kind::kChallenge) state->exchanges.erase(it);
      done(std::move(reply));
    });
  }

  AccountStore* accounts_;
  Poster post_;
  SaslServerOptions server_options_;
  std::shared_ptr<State> state_;
};

}  // namespace

std::unique_ptr<Authenticator> make_local_authenticator(AccountStore* accounts, Poster post) {
  return make_local_authenticator(accounts, std::move(post), LocalAuthOptions{});
}

std::unique_ptr<Authenticator> make_local_authenticator(AccountStore* accounts, Poster post,
                                                        const LocalAuthOptions& options) {
  return std::make_unique<LocalAuthenticator>(accounts, std::move(post), options);
}

}  // namespace hearth::xmpp
