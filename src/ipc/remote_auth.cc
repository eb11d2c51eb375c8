#include "ipc/remote_auth.h"

#include <algorithm>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/log.h"
#include "ipc/messages.h"
#include "xmpp/account_store.h"
#include "xmpp/jid.h"
#include "xmpp/scram.h"

namespace hearth::ipc {
namespace {

// RFC 6120 §6.5.10: the failure is on our side, the client may retry.
constexpr const char* kTemporaryFailure = "temporary-auth-failure";

// ---------------------------------------------------------------------------
// Reactor side

class RemoteAuthenticator final : public xmpp::Authenticator {
 public:
  RemoteAuthenticator(Channel* channel, const RemoteAuthOptions& options)
      : channel_(channel), options_(options), state_(std::make_shared<State>()) {}

  std::vector<std::string> mechanisms(const xmpp::ChannelBindings& cb) const override {
    return xmpp::sasl_mechanisms(cb);
  }

  uint64_t start(std::string_view mechanism, std::string_view initial_response,
                 const xmpp::ChannelBindings& cb, xmpp::SaslCallback done) override {
    uint64_t id = state_->next_id++;
    Exchange& ex = state_->exchanges[id];
    // Refuse locally what the worker would treat as a protocol violation
    // (and what needs no round trip): the client's bytes must never be able
    // to kill the worker.
    xmpp::SaslSelection sel = xmpp::sasl_select(mechanism, cb);
    if (!sel.mechanism) {
      deliver_later(id, xmpp::sasl_failure(sel.condition), std::move(done));
      return id;
    }
    if (initial_response.size() > kMaxSaslData) {
      deliver_later(id, xmpp::sasl_failure("malformed-request"), std::move(done));
      return id;
    }
    if (cb.tls_exporter.size() > kMaxChannelBinding ||
        cb.tls_server_end_point.size() > kMaxChannelBinding || cb.domain.size() > kMaxDomain ||
        cb.peer_ip.size() > kMaxPeerIp) {
      HEARTH_ERROR("auth", "channel binding data, domain or IP too long for the auth protocol");
      deliver_later(id, xmpp::sasl_failure(kTemporaryFailure), std::move(done));
      return id;
    }
    SaslStart m;
    m.mechanism = std::string(xmpp::sasl_mechanism_name(*sel.mechanism));
    m.initial_response = std::string(initial_response);
    m.cb = cb;
    send(id, ++ex.op, MsgType::kSaslStart, m.encode(), 0, std::move(done));
    ex.in_flight = true;
    return id;
  }

  void step(uint64_t id, std::string_view response, xmpp::SaslCallback done) override {
    auto it = state_->exchanges.find(id);
    if (it == state_->exchanges.end()) {
      // Finished or aborted: nothing to continue (as the local one).
      channel_->loop()->post(
          [done = std::move(done)] { done(xmpp::sasl_failure("malformed-request")); });
      return;
    }
    Exchange& ex = it->second;
    if (ex.in_flight || ex.remote == 0) {
      // A step before the previous reply: out of order.
      abort_remote(ex);
      deliver_later(id, xmpp::sasl_failure("malformed-request"), std::move(done));
      return;
    }
    if (ex.generation != channel_->generation() || !channel_->connected()) {
      // The worker that holds this exchange is gone (and a request queued
      // now would reach its successor, which never heard of it).
      deliver_later(id, xmpp::sasl_failure(kTemporaryFailure), std::move(done));
      return;
    }
    if (response.size() > kMaxSaslData) {
      abort_remote(ex);
      deliver_later(id, xmpp::sasl_failure("malformed-request"), std::move(done));
      return;
    }
    SaslStep m;
    m.exchange = ex.remote;
    m.response = std::string(response);
    send(id, ++ex.op, MsgType::kSaslStep, m.encode(), ex.remote, std::move(done));
    ex.in_flight = true;
  }

  void abort(uint64_t id) override {
    auto it = state_->exchanges.find(id);
    if (it == state_->exchanges.end()) return;
    abort_remote(it->second);
    state_->exchanges.erase(it);
  }

 private:
  struct Exchange {
    uint64_t remote = 0;      // the worker's exchange id, once known
    uint64_t generation = 0;  // of the channel connection that holds it
    uint64_t op = 0;          // of the request or delivery in flight
    bool in_flight = false;
  };
  // Shared with the callbacks so that they can tell whether the exchange
  // (or the authenticator itself) is still there.
  struct State {
    uint64_t next_id = 1;
    std::unordered_map<uint64_t, Exchange> exchanges;
  };

  // Delivers a locally decided, final reply on a later turn unless the
  // exchange is aborted meanwhile.
  void deliver_later(uint64_t id, xmpp::SaslReply reply, xmpp::SaslCallback done) {
    Exchange& ex = state_->exchanges[id];
    uint64_t op = ++ex.op;
    ex.in_flight = true;
    std::weak_ptr<State> weak = state_;
    channel_->loop()->post(
        [weak, id, op, reply = std::move(reply), done = std::move(done)]() mutable {
          auto state = weak.lock();
          if (!state) return;
          auto it = state->exchanges.find(id);
          if (it == state->exchanges.end() || it->second.op != op) return;
          state->exchanges.erase(it);
          done(std::move(reply));
        });
  }

  // Tells the worker to forget an exchange it holds (best effort).
  void abort_remote(Exchange& ex) {
    if (ex.remote == 0 || ex.generation != channel_->generation()) return;
    send_abort(channel_, ex.remote, options_.timeout_ms);
    ex.remote = 0;
  }

  static void send_abort(Channel* channel, uint64_t remote, int timeout_ms) {
    SaslAbort m;
    m.exchange = remote;
    channel->request(MsgType::kSaslAbort, m.encode(), timeout_ms, [channel](Result<Frame> r) {
      if (!r) return;  // the worker is gone or slow: nothing left to forget
      Result<SaslReply> reply = parse(channel, r.value());
      (void)reply;
    });
  }

  // The worker's SaslReply in `frame`; anything else breaks the channel.
  static Result<SaslReply> parse(Channel* channel, Frame& frame) {
    std::string problem;
    Result<SaslReply> reply = make_error("");
    if (!frame.fds.empty()) {
      frame.close_fds();
      problem = "fds attached to a SaslReply";
    } else if (frame.type != static_cast<uint16_t>(MsgType::kSaslReply)) {
      problem = "expected SaslReply, got " + std::string(msg_type_name(frame.type));
    } else {
      reply = SaslReply::decode(frame.payload);
      if (!reply) problem = reply.error().message;
    }
    if (!problem.empty()) {
      channel->fail(problem);
      return make_error(problem);
    }
    return reply;
  }

  void send(uint64_t id, uint64_t op, MsgType type, std::string payload, uint64_t remote,
            xmpp::SaslCallback done) {
    std::weak_ptr<State> weak = state_;
    Channel* channel = channel_;
    int timeout_ms = options_.timeout_ms;
    channel_->request(
        type, std::move(payload), timeout_ms,
        [weak, channel, timeout_ms, id, op, remote, done = std::move(done)](Result<Frame> r) {
          on_reply(weak, channel, timeout_ms, id, op, remote, std::move(r), done);
        });
  }

  // `remote` is 0 for a start, else the exchange the step was for.
  static void on_reply(const std::weak_ptr<State>& weak, Channel* channel, int timeout_ms,
                       uint64_t id, uint64_t op, uint64_t remote, Result<Frame> r,
                       const xmpp::SaslCallback& done) {
    xmpp::SaslReply out = xmpp::sasl_failure(kTemporaryFailure);
    uint64_t worker_exchange = 0;
    if (!r) {
      HEARTH_WARN("auth", "auth worker request failed: %s", r.error().message.c_str());
    } else if (Result<SaslReply> reply = parse(channel, r.value()); reply) {
      bool challenge = reply->kind == SaslReply::Kind::kChallenge;
      bool consistent =
          remote == 0 ? (challenge == (reply->exchange != 0)) : reply->exchange == remote;
      if (!consistent) {
        channel->fail("SaslReply for the wrong exchange");
      } else {
        worker_exchange = challenge ? reply->exchange : 0;
        out = reply->to_sasl();
      }
    }

    auto state = weak.lock();
    auto it =
        state ? state->exchanges.find(id) : std::unordered_map<uint64_t, Exchange>::iterator();
    if (!state || it == state->exchanges.end() || it->second.op != op) {
      // Aborted meanwhile (or the authenticator is gone): the caller no
      // longer waits, but an exchange the worker now holds must go.
      if (remote == 0 && worker_exchange != 0) send_abort(channel, worker_exchange, timeout_ms);
      return;
    }
    Exchange& ex = it->second;
    ex.in_flight = false;
    if (out.kind == xmpp::SaslReply::Kind::kChallenge) {
      if (remote == 0) {
        ex.remote = worker_exchange;
        ex.generation = channel->generation();
      }
    } else {
      state->exchanges.erase(it);
    }
    done(std::move(out));
  }

  Channel* channel_;
  RemoteAuthOptions options_;
  std::shared_ptr<State> state_;
};

// ---------------------------------------------------------------------------
// Worker side

Frame reply_frame(const Frame& request, MsgType type, std::string payload) {
  Frame f;
  f.type = static_cast<uint16_t>(type);
  f.id = request.id;
  f.payload = std::move(payload);
  return f;
}

Frame sasl_reply_frame(const Frame& request, uint64_t exchange, const xmpp::SaslReply& r) {
  return reply_frame(request, MsgType::kSaslReply, SaslReply::from(exchange, r).encode());
}

Frame account_reply_frame(const Frame& request, AccountReply reply) {
  if (reply.error.size() > kMaxErrorText) reply.error.resize(kMaxErrorText);
  return reply_frame(request, MsgType::kAccountReply, reply.encode());
}

}  // namespace

std::unique_ptr<xmpp::Authenticator> make_remote_authenticator(Channel* auth_channel) {
  return make_remote_authenticator(auth_channel, RemoteAuthOptions{});
}

std::unique_ptr<xmpp::Authenticator> make_remote_authenticator(Channel* auth_channel,
                                                               const RemoteAuthOptions& options) {
  return std::make_unique<RemoteAuthenticator>(auth_channel, options);
}

AuthService::AuthService(xmpp::AccountStore* store) : AuthService(store, AuthServiceOptions{}) {}

AuthService::AuthService(xmpp::AccountStore* store, const AuthServiceOptions& options)
    : store_(store), options_(options) {
  xmpp::FailureTable* table = store_ != nullptr ? store_->failures() : nullptr;
  if (table == nullptr) {
    memory_failures_ = xmpp::make_memory_failure_table();
    table = memory_failures_.get();
  }
  limiter_ = std::make_unique<xmpp::AuthLimiter>(
      table, options_.limits, options_.clock ? options_.clock : xmpp::wall_clock_ms);
  limiter_->prune();  // what expired while the server was down
}

Result<Frame> AuthService::handle(const Frame& request) {
  uint64_t delay_ms = 0;
  return handle(request, &delay_ms);
}

Result<Frame> AuthService::handle(const Frame& request, uint64_t* delay_ms) {
  *delay_ms = 0;
  if (!request.fds.empty()) return make_error("auth: fds attached to a request");
  switch (static_cast<MsgType>(request.type)) {
    case MsgType::kSaslStart:
      return sasl_start(request, delay_ms);
    case MsgType::kSaslStep:
      return sasl_step(request, delay_ms);
    case MsgType::kSaslAbort:
      return sasl_abort(request);
    case MsgType::kAccountRequest:
      return account(request);
    default:
      break;
  }
  return make_error("auth: unexpected message " + std::string(msg_type_name(request.type)) +
                    " (type " + std::to_string(request.type) + ")");
}

uint64_t AuthService::account_outcome(const Exchange& ex, const xmpp::SaslReply& r) {
  const std::string& user = ex.server->claimed_username();
  if (r.kind == xmpp::SaslReply::Kind::kSuccess) {
    limiter_->success(ex.peer_ip, user, ex.mechanism);
    return 0;
  }
  // A guess that was checked and wrong (or a name that is no account):
  // not a malformed message, an abort or our own temporary failure.
  if (r.kind == xmpp::SaslReply::Kind::kFailure && r.condition == "not-authorized")
    return limiter_->failure(ex.peer_ip, user, ex.mechanism).delay_ms;
  return 0;
}

Result<Frame> AuthService::sasl_start(const Frame& request, uint64_t* delay_ms) {
  auto m = SaslStart::decode(request.payload);
  if (!m) return m.error();
  xmpp::SaslSelection sel = xmpp::sasl_select(m->mechanism, m->cb);
  if (!sel.mechanism) return sasl_reply_frame(request, 0, xmpp::sasl_failure(sel.condition));
  // A banned IP fails here, the same for every account and password, before
  // any lookup or hashing.
  if (!limiter_->allowed(m->cb.peer_ip)) {
    HEARTH_DEBUG("auth", "refused %s: banned", m->cb.peer_ip.c_str());
    return sasl_reply_frame(request, 0, xmpp::sasl_failure("not-authorized"));
  }

  xmpp::AccountStore* store = store_;
  xmpp::CredentialLookup lookup =
      [store](std::string_view username) -> Result<std::optional<xmpp::AccountRecord>> {
    if (store == nullptr) return make_error("no account store");
    return store->get(username);
  };
  xmpp::SaslServerOptions server_options;
  server_options.fake_iterations = options_.fake_iterations;
  server_options.server_nonce_for_testing = options_.server_nonce_for_testing;
  Exchange ex;
  ex.server = xmpp::make_sasl_server(*sel.mechanism, m->cb, std::move(lookup), server_options);
  ex.peer_ip = m->cb.peer_ip;
  ex.mechanism = std::string(xmpp::sasl_mechanism_name(*sel.mechanism));
  xmpp::SaslReply r = ex.server->step(m->initial_response);
  uint64_t exchange = 0;
  if (r.kind == xmpp::SaslReply::Kind::kChallenge) {
    while (exchanges_.size() >= std::max<size_t>(options_.max_exchanges, 1)) {
      HEARTH_WARN("auth", "too many open SASL exchanges: dropping the oldest");
      exchanges_.erase(exchanges_.begin());
    }
    exchange = next_exchange_++;
    exchanges_.emplace(exchange, std::move(ex));
  } else {
    *delay_ms = account_outcome(ex, r);  // PLAIN with an initial response
  }
  return sasl_reply_frame(request, exchange, r);
}

Result<Frame> AuthService::sasl_step(const Frame& request, uint64_t* delay_ms) {
  auto m = SaslStep::decode(request.payload);
  if (!m) return m.error();
  auto it = exchanges_.find(m->exchange);
  if (it == exchanges_.end()) {
    // Aborted, dropped as the oldest, or a race with the reactor's abort.
    return sasl_reply_frame(request, m->exchange, xmpp::sasl_failure("malformed-request"));
  }
  // Banned since the exchange began (guesses on parallel connections): no
  // proof is checked any more.
  if (!limiter_->allowed(it->second.peer_ip)) {
    exchanges_.erase(it);
    return sasl_reply_frame(request, m->exchange, xmpp::sasl_failure("not-authorized"));
  }
  xmpp::SaslReply r = it->second.server->step(m->response);
  if (r.kind != xmpp::SaslReply::Kind::kChallenge) {
    *delay_ms = account_outcome(it->second, r);
    exchanges_.erase(it);
  }
  return sasl_reply_frame(request, m->exchange, r);
}

Result<Frame> AuthService::sasl_abort(const Frame& request) {
  auto m = SaslAbort::decode(request.payload);
  if (!m) return m.error();
  exchanges_.erase(m->exchange);
  return sasl_reply_frame(request, m->exchange, xmpp::sasl_failure("aborted"));
}

Result<Frame> AuthService::account(const Frame& request) {
  auto m = AccountRequest::decode(request.payload);
  if (!m) return m.error();
  AccountReply reply;
  if (store_ == nullptr) {
    reply.error = "no account store";
    return account_reply_frame(request, std::move(reply));
  }

  if (m->op == AccountRequest::Op::kList) {
    auto names = store_->list();
    if (!names) {
      reply.error = names.error().message;
      return account_reply_frame(request, std::move(reply));
    }
    std::sort(names->begin(), names->end());
    // Room left for names: the payload minus the fixed fields (ok, empty
    // error, count, more).
    size_t budget = kMaxPayload - (1 + 4 + 4 + 1);
    for (auto& n : names.value()) {
      if (!m->username.empty() && n <= m->username) continue;
      if (n.size() > kMaxUsername) continue;  // not a valid localpart: never sent
      if (4 + n.size() > budget) {
        reply.more = true;
        break;
      }
      budget -= 4 + n.size();
      reply.names.push_back(std::move(n));
    }
    reply.ok = true;
    return account_reply_frame(request, std::move(reply));
  }

  // The worker does not trust the reactor to have normalised the name.
  auto username = xmpp::normalize_localpart(m->username);
  if (!username) {
    reply.error = "invalid username: " + username.error().message;
    return account_reply_frame(request, std::move(reply));
  }
  bool sets_password =
      m->op == AccountRequest::Op::kCreate || m->op == AccountRequest::Op::kSetPassword;
  if (sets_password &&
      (m->iterations < xmpp::kScramMinIterations || m->iterations > xmpp::kScramMaxIterations)) {
    reply.error = "iteration count out of range";
    return account_reply_frame(request, std::move(reply));
  }
  Status s;
  switch (m->op) {
    case AccountRequest::Op::kCreate:
      s = store_->create(*username, m->password, m->iterations);
      break;
    case AccountRequest::Op::kSetPassword:
      s = store_->set_password(*username, m->password, m->iterations);
      break;
    case AccountRequest::Op::kRemove:
      s = store_->remove(*username);
      break;
    case AccountRequest::Op::kList:
      break;
  }
  m->wipe();
  reply.ok = s.ok();
  if (!s) reply.error = s.error().message;
  return account_reply_frame(request, std::move(reply));
}

Status AuthService::serve(int fd) {
  for (;;) {
    auto in = recv_frame_blocking(fd, -1);
    if (!in) {
      if (is_peer_closed(in.error())) return {};
      return in.error();
    }
    Result<Frame> out = handle(in.value());
    in->close_fds();
    in->wipe_payload();
    if (!out) return out.error();
    if (Status s = send_frame_blocking(fd, out.value(), -1); !s) return s;
  }
}

}  // namespace hearth::ipc
