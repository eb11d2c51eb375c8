#include "ipc/remote_auth.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "../xmpp/fake_account_store.h"
#include "core/loop.h"
#include "ipc/channel.h"
#include "ipc/frame.h"
#include "ipc/messages.h"
#include "xmpp/account_store.h"
#include "xmpp/auth.h"
#include "xmpp/scram.h"

namespace hearth::ipc {
namespace {

using Kind = xmpp::SaslReply::Kind;
using xmpp::ChannelBindings;
using xmpp::SaslReply;

constexpr uint32_t kTestIterations = 64;
constexpr const char* kPassword = "r0m30myr0m30";

// In-memory AccountStore with credentials derived like the real one's.
// get() of "slow" sleeps (slow_user), so that a test can kill the worker meanwhile.
using xmpp::testing::FakeAccountStore;

ChannelBindings tls_only() {
  ChannelBindings cb;
  cb.tls = true;
  cb.domain = "example.org";
  return cb;
}

std::string plain(const std::string& user, const std::string& password) {
  return std::string("\0", 1) + user + std::string("\0", 1) + password;
}

const std::string kClientFirst = "n,,n=juliet,r=clientNONCEclientNONCE";

std::string client_final(const std::string& server_first, std::string* server_final = nullptr) {
  auto f =
      xmpp::scram_client_final(xmpp::ScramHash::kSha256, kPassword, kClientFirst, server_first, "");
  EXPECT_TRUE(f.ok()) << (f.ok() ? "" : f.error().message);
  if (!f.ok()) return "";
  if (server_final) *server_final = f->server_final;
  return f->message;
}

Frame request_frame(MsgType type, std::string payload, uint32_t id = 1) {
  Frame f;
  f.type = static_cast<uint16_t>(type);
  f.id = id;
  f.payload = std::move(payload);
  return f;
}

// ---------------------------------------------------------------------------
// AuthService on its own

class IpcAuthServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(store_.create("juliet", kPassword, kTestIterations).ok());
    AuthServiceOptions opts;
    opts.fake_iterations = kTestIterations;
    opts.max_exchanges = 3;
    service_ = std::make_unique<AuthService>(&store_, opts);
  }

  SaslReply sasl(const Frame& request, uint64_t* exchange = nullptr) {
    auto out = service_->handle(request);
    EXPECT_TRUE(out.ok()) << (out.ok() ? "" : out.error().message);
    if (!out.ok()) return {};
    EXPECT_EQ(out->type, static_cast<uint16_t>(MsgType::kSaslReply));
    EXPECT_EQ(out->id, request.id);
    auto r = ipc::SaslReply::decode(out->payload);
    EXPECT_TRUE(r.ok());
    if (!r.ok()) return {};
    if (exchange) *exchange = r->exchange;
    return r->to_sasl();
  }
  AccountReply account(const AccountRequest& req) {
    auto out = service_->handle(request_frame(MsgType::kAccountRequest, req.encode(), 7));
    EXPECT_TRUE(out.ok()) << (out.ok() ? "" : out.error().message);
    if (!out.ok()) return {};
    EXPECT_EQ(out->type, static_cast<uint16_t>(MsgType::kAccountReply));
    EXPECT_EQ(out->id, 7u);
    auto r = AccountReply::decode(out->payload);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? r.value() : AccountReply{};
  }
  Frame start(const std::string& mechanism, const std::string& initial, uint32_t id = 1) {
    SaslStart m;
    m.mechanism = mechanism;
    m.initial_response = initial;
    m.cb = tls_only();
    return request_frame(MsgType::kSaslStart, m.encode(), id);
  }
  Frame step(uint64_t exchange, const std::string& response, uint32_t id = 2) {
    SaslStep m;
    m.exchange = exchange;
    m.response = response;
    return request_frame(MsgType::kSaslStep, m.encode(), id);
  }

  FakeAccountStore store_;
  std::unique_ptr<AuthService> service_;
};

TEST_F(IpcAuthServiceTest, ScramExchange) {
  uint64_t exchange = 0;
  SaslReply first = sasl(start("SCRAM-SHA-256", kClientFirst, 11), &exchange);
  ASSERT_EQ(first.kind, Kind::kChallenge) << first.condition;
  EXPECT_NE(exchange, 0u);
  EXPECT_EQ(service_->exchanges(), 1u);
  std::string expected_final;
  uint64_t echoed = 0;
  SaslReply last = sasl(step(exchange, client_final(first.data, &expected_final), 12), &echoed);
  ASSERT_EQ(last.kind, Kind::kSuccess) << last.condition;
  EXPECT_EQ(last.data, expected_final);
  EXPECT_EQ(last.username, "juliet");
  EXPECT_EQ(echoed, exchange);
  EXPECT_EQ(service_->exchanges(), 0u);
  // Gone once finished.
  EXPECT_EQ(sasl(step(exchange, "c=biws")).condition, "malformed-request");
}

TEST_F(IpcAuthServiceTest, PlainAndRefusals) {
  uint64_t exchange = 99;
  SaslReply ok = sasl(start("PLAIN", plain("juliet", kPassword)), &exchange);
  EXPECT_EQ(ok.kind, Kind::kSuccess);
  EXPECT_EQ(ok.username, "juliet");
  EXPECT_EQ(exchange, 0u);  // nothing kept
  EXPECT_EQ(sasl(start("PLAIN", plain("juliet", "wrong"))).condition, "not-authorized");
  EXPECT_EQ(sasl(start("CRAM-MD5", "")).condition, "invalid-mechanism");
  EXPECT_EQ(service_->exchanges(), 0u);
}

// Failed-login limits (auth_limits.h) as the worker applies them.
TEST_F(IpcAuthServiceTest, FailedLoginLimits) {
  uint64_t now = 1'800'000'000'000ull;
  AuthServiceOptions opts;
  opts.fake_iterations = kTestIterations;
  opts.limits.max_failures = 3;
  opts.clock = [&now] { return now; };
  service_ = std::make_unique<AuthService>(&store_, opts);
  auto from = [&](const std::string& ip, const std::string& mechanism, const std::string& initial,
                  uint32_t id = 1) {
    SaslStart m;
    m.mechanism = mechanism;
    m.initial_response = initial;
    m.cb = tls_only();
    m.cb.peer_ip = ip;
    return request_frame(MsgType::kSaslStart, m.encode(), id);
  };
  auto run = [&](const Frame& f, uint64_t* delay) {
    auto out = service_->handle(f, delay);
    EXPECT_TRUE(out.ok());
    return out.ok() ? out->payload : std::string();
  };
  uint64_t delay = 0;
  // A SCRAM exchange from the attacker's IP, left half-way.
  uint64_t pending = 0;
  ASSERT_EQ(sasl(from("192.0.2.1", "SCRAM-SHA-256", kClientFirst), &pending).kind,
            Kind::kChallenge);

  // Wrong passwords: answered later and later.
  run(from("192.0.2.1", "PLAIN", plain("juliet", "wrong")), &delay);
  EXPECT_EQ(delay, 500u);
  run(from("192.0.2.1", "PLAIN", plain("romeo", "wrong")), &delay);  // no such account
  EXPECT_EQ(delay, 1000u);
  std::string wrong = run(from("192.0.2.1", "PLAIN", plain("juliet", "wrong2"), 5), &delay);
  EXPECT_EQ(delay, 2000u);  // the third: banned now

  // Banned: the right password, an unknown account and SCRAM all get the
  // same immediate failure, without even a lookup.
  int gets = store_.gets;
  std::string right = run(from("192.0.2.1", "PLAIN", plain("juliet", kPassword), 5), &delay);
  EXPECT_EQ(delay, 0u);
  EXPECT_EQ(right, wrong);
  EXPECT_EQ(run(from("192.0.2.1", "PLAIN", plain("nobody", kPassword), 5), &delay), wrong);
  EXPECT_EQ(run(from("192.0.2.1", "SCRAM-SHA-256", kClientFirst, 5), &delay), wrong);
  EXPECT_EQ(sasl(from("192.0.2.1", "SCRAM-SHA-256", kClientFirst)).condition, "not-authorized");
  // The exchange begun before the ban checks no proof now.
  EXPECT_EQ(sasl(step(pending, "c=biws,r=x,p=AAAA")).condition, "not-authorized");
  EXPECT_EQ(store_.gets, gets);

  // Another IP logs in to the same account at once.
  EXPECT_EQ(sasl(from("192.0.2.2", "PLAIN", plain("juliet", kPassword))).kind, Kind::kSuccess);
  run(from("192.0.2.2", "PLAIN", plain("juliet", kPassword)), &delay);
  EXPECT_EQ(delay, 0u);

  // The ban ends.
  now += opts.limits.ban_time_ms;
  EXPECT_EQ(sasl(from("192.0.2.1", "PLAIN", plain("juliet", kPassword))).kind, Kind::kSuccess);
}

TEST_F(IpcAuthServiceTest, AbortAndTheExchangeBound) {
  uint64_t ids[4];
  for (auto& id : ids)
    ASSERT_EQ(sasl(start("SCRAM-SHA-256", kClientFirst), &id).kind, Kind::kChallenge);
  EXPECT_EQ(service_->exchanges(), 3u);  // the oldest was dropped
  EXPECT_EQ(sasl(step(ids[0], "c=biws,r=x,p=AAAA")).condition, "malformed-request");

  SaslAbort a;
  a.exchange = ids[1];
  uint64_t echoed = 0;
  SaslReply r = sasl(request_frame(MsgType::kSaslAbort, a.encode()), &echoed);
  EXPECT_EQ(r.condition, "aborted");
  EXPECT_EQ(echoed, ids[1]);
  EXPECT_EQ(service_->exchanges(), 2u);
}

TEST_F(IpcAuthServiceTest, ProtocolViolationsAreErrors) {
  EXPECT_FALSE(service_->handle(request_frame(MsgType::kSaslReply, "")).ok());
  EXPECT_FALSE(service_->handle(request_frame(MsgType::kSignRequest, "")).ok());
  EXPECT_FALSE(service_->handle(request_frame(static_cast<MsgType>(0x7777), "")).ok());
  EXPECT_FALSE(service_->handle(request_frame(MsgType::kSaslStart, "garbage")).ok());
  Frame good = start("PLAIN", plain("juliet", kPassword));
  Frame trailing = good;
  trailing.payload += "x";
  EXPECT_FALSE(service_->handle(trailing).ok());
  Frame with_fd = good;
  with_fd.fds = {0};
  EXPECT_FALSE(service_->handle(with_fd).ok());
  EXPECT_TRUE(service_->handle(good).ok());
}

TEST_F(IpcAuthServiceTest, Accounts) {
  AccountRequest req;
  req.op = AccountRequest::Op::kCreate;
  req.username = "Romeo";  // normalised by the worker
  req.password = "pw";
  req.iterations = kTestIterations;
  EXPECT_TRUE(account(req).ok);
  EXPECT_EQ(store_.accounts.count("romeo"), 1u);
  AccountReply again = account(req);
  EXPECT_FALSE(again.ok);
  EXPECT_EQ(again.error, "exists");

  req.op = AccountRequest::Op::kSetPassword;
  req.iterations = 0;
  EXPECT_FALSE(account(req).ok);
  req.iterations = kTestIterations;
  req.password = "new";
  EXPECT_TRUE(account(req).ok);

  req.username = "a b";  // not a localpart
  req.op = AccountRequest::Op::kRemove;
  EXPECT_FALSE(account(req).ok);

  AccountRequest list;
  list.op = AccountRequest::Op::kList;
  AccountReply names = account(list);
  EXPECT_TRUE(names.ok);
  EXPECT_EQ(names.names, (std::vector<std::string>{"juliet", "romeo"}));
  EXPECT_FALSE(names.more);

  req.username = "romeo";
  EXPECT_TRUE(account(req).ok);
  EXPECT_EQ(store_.accounts.count("romeo"), 0u);
}

TEST_F(IpcAuthServiceTest, LongListsComeInPages) {
  // More names than one message holds.
  for (int i = 0; i < 3000; ++i) {
    char name[32];
    snprintf(name, sizeof name, "user-%05d-padding-padding", i);
    store_.accounts[name].username = name;
  }
  std::vector<std::string> all;
  AccountRequest list;
  list.op = AccountRequest::Op::kList;
  int pages = 0;
  for (;;) {
    AccountReply page = account(list);
    ASSERT_TRUE(page.ok);
    ++pages;
    all.insert(all.end(), page.names.begin(), page.names.end());
    if (!page.more) break;
    ASSERT_FALSE(page.names.empty());
    list.username = page.names.back();
    ASSERT_LT(pages, 10);
  }
  EXPECT_GT(pages, 1);
  EXPECT_EQ(all.size(), 3001u);
  EXPECT_TRUE(std::is_sorted(all.begin(), all.end()));
}

// ---------------------------------------------------------------------------
// RemoteAuthenticator against a worker process

class IpcRemoteAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(store_.create("juliet", kPassword, kTestIterations).ok());
    ASSERT_TRUE(store_.create("slow", kPassword, kTestIterations).ok());
    auto l = core::Loop::create();
    ASSERT_TRUE(l.ok());
    loop_ = std::move(l.value());
    channel_ = std::make_unique<Channel>(loop_.get(), "auth");
    channel_->set_on_down([this](const std::string&) { ++downs_; });
    RemoteAuthOptions opts;
    opts.timeout_ms = 3000;
    auth_ = make_remote_authenticator(channel_.get(), opts);
  }
  void TearDown() override {
    auth_.reset();
    channel_.reset();  // the worker sees EOF and exits
    if (pid_ > 0) {
      int status = 0;
      waitpid(pid_, &status, 0);
    }
  }

  // Forks a worker serving AuthService on a fresh socketpair and attaches
  // the channel to it.
  void spawn() {
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(sv[0]);
      AuthServiceOptions opts;
      opts.fake_iterations = kTestIterations;
      AuthService service(&store_, opts);
      Status s = service.serve(sv[1]);
      _exit(s.ok() ? 0 : 3);
    }
    close(sv[1]);
    pid_ = pid;
    ASSERT_TRUE(channel_->attach(sv[0]).ok());
  }

  // SIGKILL the worker and reap it.
  void kill_worker() {
    ASSERT_GT(pid_, 0);
    kill(pid_, SIGKILL);
    int status = 0;
    ASSERT_EQ(waitpid(pid_, &status, 0), pid_);
    EXPECT_TRUE(WIFSIGNALED(status));
    pid_ = -1;
  }

  xmpp::SaslCallback record() {
    return [this](SaslReply r) { replies_.push_back(std::move(r)); };
  }

  bool run_until(const std::function<bool()>& pred, int max_ms = 5000) {
    uint64_t deadline = core::Loop::now_ms() + static_cast<uint64_t>(max_ms);
    std::function<void()> tick = [&] {
      if (pred() || core::Loop::now_ms() >= deadline) {
        loop_->stop();
      } else {
        loop_->add_timer(1, tick);
      }
    };
    loop_->add_timer(0, tick);
    loop_->run();
    return pred();
  }
  bool wait_replies(size_t n) {
    return run_until([&] { return replies_.size() >= n; });
  }

  // Runs a whole SCRAM-SHA-256 login; true on success as juliet.
  bool login() {
    size_t base = replies_.size();
    uint64_t id = auth_->start("SCRAM-SHA-256", kClientFirst, tls_only(), record());
    if (!wait_replies(base + 1) || replies_.back().kind != Kind::kChallenge) return false;
    std::string expected;
    auth_->step(id, client_final(replies_.back().data, &expected), record());
    if (!wait_replies(base + 2)) return false;
    const SaslReply& r = replies_.back();
    return r.kind == Kind::kSuccess && r.username == "juliet" && r.data == expected;
  }

  FakeAccountStore store_ = [] {
    FakeAccountStore s;
    s.slow_user = "slow";
    return s;
  }();
  std::unique_ptr<core::Loop> loop_;
  std::unique_ptr<Channel> channel_;
  std::unique_ptr<xmpp::Authenticator> auth_;
  std::vector<SaslReply> replies_;
  pid_t pid_ = -1;
  int downs_ = 0;
};

TEST_F(IpcRemoteAuthTest, ScramLoginThroughTheWorker) {
  spawn();
  uint64_t id = auth_->start("SCRAM-SHA-256", kClientFirst, tls_only(), record());
  EXPECT_NE(id, 0u);
  EXPECT_TRUE(replies_.empty());  // never from inside start()
  ASSERT_TRUE(wait_replies(1));
  ASSERT_EQ(replies_[0].kind, Kind::kChallenge) << replies_[0].condition;
  std::string expected;
  auth_->step(id, client_final(replies_[0].data, &expected), record());
  EXPECT_EQ(replies_.size(), 1u);  // never from inside step()
  ASSERT_TRUE(wait_replies(2));
  EXPECT_EQ(replies_[1].kind, Kind::kSuccess) << replies_[1].condition;
  EXPECT_EQ(replies_[1].username, "juliet");
  EXPECT_EQ(replies_[1].data, expected);

  // Finished: a further step fails, later.
  auth_->step(id, "c=biws", record());
  EXPECT_EQ(replies_.size(), 2u);
  ASSERT_TRUE(wait_replies(3));
  EXPECT_EQ(replies_[2].condition, "malformed-request");
  EXPECT_EQ(downs_, 0);
}

TEST_F(IpcRemoteAuthTest, PlainAndLocalRefusals) {
  spawn();
  auth_->start("PLAIN", plain("juliet", kPassword), tls_only(), record());
  auth_->start("PLAIN", plain("juliet", "nope"), tls_only(), record());
  auth_->start("CRAM-MD5", "", tls_only(), record());
  auth_->start("SCRAM-SHA-256", kClientFirst, ChannelBindings{}, record());
  auth_->start(std::string(100, 'X'), "", tls_only(), record());
  auth_->start("PLAIN", std::string(kMaxSaslData + 1, 'a'), tls_only(), record());
  EXPECT_TRUE(replies_.empty());
  ASSERT_TRUE(wait_replies(6));
  // Local refusals need no round trip and so come first.
  std::vector<std::string> conditions;
  for (const auto& r : replies_)
    conditions.push_back(r.kind == Kind::kSuccess ? "success:" + r.username : r.condition);
  std::sort(conditions.begin(), conditions.end());
  EXPECT_EQ(conditions, (std::vector<std::string>{"encryption-required", "invalid-mechanism",
                                                  "invalid-mechanism", "malformed-request",
                                                  "not-authorized", "success:juliet"}));
  EXPECT_EQ(downs_, 0);  // an oversized client message never reaches the worker
  EXPECT_TRUE(login());
}

TEST_F(IpcRemoteAuthTest, AbortSuppressesCallbacks) {
  spawn();
  uint64_t id = auth_->start("SCRAM-SHA-256", kClientFirst, tls_only(), record());
  auth_->abort(id);  // before the worker's reply
  uint64_t refused = auth_->start("NOPE", "", tls_only(), record());
  auth_->abort(refused);  // a local refusal, not delivered yet
  uint64_t other = auth_->start("SCRAM-SHA-256", kClientFirst, tls_only(), record());
  ASSERT_TRUE(wait_replies(1));
  EXPECT_EQ(replies_.size(), 1u);
  EXPECT_EQ(replies_[0].kind, Kind::kChallenge);

  // A step in flight.
  auth_->step(other, client_final(replies_[0].data), record());
  auth_->abort(other);
  auth_->abort(12345);  // unknown ids are fine
  run_until([] { return false; }, 100);
  EXPECT_EQ(replies_.size(), 1u);
  EXPECT_EQ(downs_, 0);
  EXPECT_TRUE(login());
}

TEST_F(IpcRemoteAuthTest, WorkerKilledDuringARequestIsATemporaryFailure) {
  spawn();
  // The worker blocks in the account lookup of "slow".
  auth_->start("PLAIN", plain("slow", kPassword), tls_only(), record());
  run_until([] { return false; }, 50);
  EXPECT_TRUE(replies_.empty());
  uint64_t start = core::Loop::now_ms();
  kill_worker();
  ASSERT_TRUE(wait_replies(1));
  EXPECT_LT(core::Loop::now_ms() - start, 1000u);  // not the 3 s deadline
  EXPECT_EQ(replies_[0].kind, Kind::kFailure);
  EXPECT_EQ(replies_[0].condition, "temporary-auth-failure");
  ASSERT_TRUE(run_until([&] { return downs_ == 1; }));

  // The next login goes to the restarted worker.
  spawn();
  EXPECT_TRUE(login());
}

TEST_F(IpcRemoteAuthTest, ExchangeOfAKilledWorkerFailsOnItsNextStep) {
  spawn();
  uint64_t id = auth_->start("SCRAM-SHA-256", kClientFirst, tls_only(), record());
  ASSERT_TRUE(wait_replies(1));
  ASSERT_EQ(replies_[0].kind, Kind::kChallenge);
  std::string final_message = client_final(replies_[0].data);
  kill_worker();
  ASSERT_TRUE(run_until([&] { return downs_ == 1; }));
  spawn();  // back before the client answers

  auth_->step(id, final_message, record());
  ASSERT_TRUE(wait_replies(2));
  EXPECT_EQ(replies_[1].kind, Kind::kFailure);
  EXPECT_EQ(replies_[1].condition, "temporary-auth-failure");
  EXPECT_TRUE(login());
}

TEST_F(IpcRemoteAuthTest, NoWorkerMeansATimeout) {
  RemoteAuthOptions opts;
  opts.timeout_ms = 80;
  auth_ = make_remote_authenticator(channel_.get(), opts);
  auth_->start("PLAIN", plain("juliet", kPassword), tls_only(), record());
  ASSERT_TRUE(wait_replies(1));
  EXPECT_EQ(replies_[0].condition, "temporary-auth-failure");
}

TEST_F(IpcRemoteAuthTest, ANonsenseReplyBreaksTheChannel) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  ASSERT_TRUE(channel_->attach(sv[0]).ok());
  auth_->start("PLAIN", plain("juliet", kPassword), tls_only(), record());
  auto req = recv_frame_blocking(sv[1], 1000);
  ASSERT_TRUE(req.ok());
  EXPECT_EQ(req->type, static_cast<uint16_t>(MsgType::kSaslStart));
  // The wrong message type for the reply.
  SignReply wrong;
  Frame reply = request_frame(MsgType::kSignReply, wrong.encode(), req->id);
  ASSERT_TRUE(send_frame(sv[1], reply).ok());
  ASSERT_TRUE(wait_replies(1));
  EXPECT_EQ(replies_[0].condition, "temporary-auth-failure");
  ASSERT_TRUE(run_until([&] { return downs_ == 1; }));
  EXPECT_FALSE(channel_->connected());
  close(sv[1]);
}

TEST_F(IpcRemoteAuthTest, WorkerExitsWhenTheReactorCloses) {
  spawn();
  EXPECT_TRUE(login());
  channel_->close();
  int status = 0;
  ASSERT_EQ(waitpid(pid_, &status, 0), pid_);
  pid_ = -1;
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST_F(IpcRemoteAuthTest, MechanismsAreComputedLocally) {
  ChannelBindings cb = tls_only();
  EXPECT_EQ(auth_->mechanisms(cb), xmpp::sasl_mechanisms(cb));
  EXPECT_TRUE(auth_->mechanisms(ChannelBindings{}).empty());
}

}  // namespace
}  // namespace hearth::ipc
