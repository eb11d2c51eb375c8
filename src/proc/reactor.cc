// The reactor: the only process that talks to the network. It holds no
// private key (TLS signatures go to the keyholder) and no password verifier
// (SASL goes to the auth worker). Peers: the monitor (control channel on
// kChannelFd: worker channels, reloads), the keyholder, the auth worker.
#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <sodium.h>

#include "core/config.h"
#include "core/log.h"
#include "core/loop.h"
#include "ipc/channel.h"
#include "ipc/frame.h"
#include "ipc/messages.h"
#include "ipc/remote_auth.h"
#include "modules/host.h"
#include "net/connection.h"
#include "net/listener.h"
#include "net/tls.h"
#include "proc/proc.h"
#include "proc/role_util.h"
#include "sandbox/sandbox.h"
#include "xml/parser.h"
#include "xmpp/server.h"

namespace hearth::proc {
namespace {

constexpr int kSignTimeoutMs = 2000;
constexpr int kAuthTimeoutMs = 10000;
constexpr int kListTimeoutMs = 10000;

// Account changes that only the auth worker may make (XEP-0077 self-service):
// one AccountRequest each over the auth channel.
class AuthAccounts final : public modules::AccountBackend {
 public:
  AuthAccounts(ipc::Channel* channel, uint32_t iterations)
      : channel_(channel), iterations_(iterations) {}

  void set_password(const std::string& localpart, std::string password,
                    std::function<void(Status)> done) override {
    with_password(ipc::AccountRequest::Op::kSetPassword, localpart, std::move(password),
                  std::move(done));
  }

  void remove(const std::string& localpart, std::function<void(Status)> done) override {
    ipc::AccountRequest req;
    req.op = ipc::AccountRequest::Op::kRemove;
    req.username = localpart;
    send(req, std::move(done));
  }

  void create(const std::string& localpart, std::string password,
              std::function<void(Status)> done) override {
    with_password(ipc::AccountRequest::Op::kCreate, localpart, std::move(password),
                  std::move(done));
  }

 private:
  void with_password(ipc::AccountRequest::Op op, const std::string& localpart, std::string password,
                     std::function<void(Status)> done) {
    if (password.size() > ipc::kMaxPassword) {
      // The worker would take an over-long field as a protocol violation.
      sodium_memzero(password.data(), password.size());
      done(make_error("the password is longer than " + std::to_string(ipc::kMaxPassword) +
                      " bytes"));
      return;
    }
    ipc::AccountRequest req;
    req.op = op;
    req.username = localpart;
    req.password = std::move(password);
    req.iterations = iterations_;
    send(req, std::move(done));
  }

  void send(ipc::AccountRequest& req, std::function<void(Status)> done) {
    std::string payload = req.encode();
    req.wipe();
    channel_->request(ipc::MsgType::kAccountRequest, std::move(payload), kAuthTimeoutMs,
                      [done = std::move(done)](Result<ipc::Frame> f) {
                        if (!f.ok()) return done(f.error());
                        Result<ipc::AccountReply> r = ipc::AccountReply::decode(f->payload);
                        if (!r.ok()) return done(r.error());
                        if (!r->ok) return done(make_error(r->error));
                        done(Status{});
                      });
  }

  ipc::Channel* channel_;
  uint32_t iterations_;
};

class Reactor : public core::IoHandler {
 public:
  Reactor(config::Config cfg, std::unique_ptr<core::Loop> loop)
      : cfg_(std::move(cfg)),
        loop_(std::move(loop)),
        auth_channel_(loop_.get(), "auth"),
        server_(cfg_, loop_.get()),
        accounts_(&auth_channel_, cfg_.scram_iterations) {}

  int main(const std::string& listen_spec);
  void on_io(uint32_t events) override;

 private:
  Status handle_control(ipc::Frame frame);
  Status attach_keyholder(int fd);
  Result<std::string> sign(const net::SignRequest& req);
  Status attach_auth(int fd);
  void on_account_event(ipc::Frame frame);
  void arm_trim_timer();
  uint64_t released_at_trim_ = 0;  // parsers and connections released, at the last trim

  config::Config cfg_;
  std::unique_ptr<core::Loop> loop_;
  ipc::Channel auth_channel_;
  std::unique_ptr<xmpp::Authenticator> auth_;
  int keyholder_fd_ = -1;
  xmpp::Server server_;
  AuthAccounts accounts_;
  // The account names from the auth worker, read before the channel is
  // attached (and again after an auth restart).
  std::vector<std::string> users_;
  bool users_loaded_ = false;
};

Status Reactor::attach_auth(int fd) {
  // Which accounts exist decides where a stanza goes (RFC 6121 §8.5.1):
  // read the list before serving. The worker answers at once; this blocks
  // the loop only at start-up and after an auth restart.
  std::vector<std::string> names;
  std::string after;
  for (uint32_t id = 1;; ++id) {
    ipc::AccountRequest req;
    req.op = ipc::AccountRequest::Op::kList;
    req.username = after;
    ipc::Frame f;
    f.type = static_cast<uint16_t>(ipc::MsgType::kAccountRequest);
    f.id = id;
    f.payload = req.encode();
    Result<ipc::Frame> reply = ipc::call(fd, f, kListTimeoutMs);
    if (!reply.ok()) {
      close(fd);
      return make_error("auth worker did not list the accounts: " + reply.error().message);
    }
    Result<ipc::AccountReply> r = ipc::AccountReply::decode(reply->payload);
    if (!r.ok() || !r->ok) {
      close(fd);
      return make_error("auth worker did not list the accounts");
    }
    for (std::string& n : r->names)
      names.push_back(std::move(n));
    if (!r->more || names.empty()) break;
    after = names.back();
  }
  if (server_.host() != nullptr) {
    server_.host()->set_users(std::move(names));
  } else {
    users_ = std::move(names);
  }
  users_loaded_ = true;
  return auth_channel_.attach(fd);
}

void Reactor::on_account_event(ipc::Frame frame) {
  Result<ipc::AccountRequest> what = ipc::AccountRequest::decode(frame.payload);
  if (frame.type != static_cast<uint16_t>(ipc::MsgType::kAccountEvent) || !what.ok() ||
      server_.host() == nullptr) {
    auth_channel_.fail("unexpected notice from the auth worker");
    return;
  }
  if (what->op == ipc::AccountRequest::Op::kCreate) {
    server_.host()->user_created(what->username);
  } else if (what->op == ipc::AccountRequest::Op::kRemove) {
    server_.host()->account_removed(what->username);
  }
}

Result<std::string> Reactor::sign(const net::SignRequest& req) {
  // wolfSSL's sign callbacks are synchronous (no async crypto in this
  // build): one bounded round trip to the keyholder, a fraction of a
  // millisecond on a socketpair.
  if (keyholder_fd_ < 0) return make_error("no keyholder");
  ipc::Frame f;
  f.type = static_cast<uint16_t>(ipc::MsgType::kSignRequest);
  f.id = 1;
  f.payload = encode_sign_request(req);
  Result<ipc::Frame> reply = ipc::call(keyholder_fd_, f, kSignTimeoutMs);
  if (!reply.ok()) {
    HEARTH_WARN("reactor", "keyholder: %s", reply.error().message.c_str());
    return reply.error();
  }
  if (reply->type != static_cast<uint16_t>(ipc::MsgType::kSignReply))
    return make_error("keyholder answered with the wrong message");
  Result<ipc::SignReply> r = ipc::SignReply::decode(reply->payload);
  if (!r.ok()) return r.error();
  if (!r->ok) return make_error("keyholder: " + r->error);
  return std::move(r->signature);
}

Status Reactor::attach_keyholder(int fd) {
  if (keyholder_fd_ >= 0) close(keyholder_fd_);
  keyholder_fd_ = fd;
  // A restarted keyholder: no need to wait in the loop; a signing request
  // waits in its socket until it has loaded the key (bounded by the timeout).
  if (server_.tls_context() != nullptr) return {};
  // At start-up, wait until the keyholder has its key (it may be generating
  // the self-signed certificate on first start).
  ipc::Frame hello;
  hello.type = kMsgKeyHello;
  hello.id = 1;
  Result<ipc::Frame> reply = ipc::call(keyholder_fd_, hello, 30000);
  if (!reply.ok()) return make_error("keyholder did not answer: " + reply.error().message);
  if (reply->type != kMsgKeyHelloReply || reply->payload.empty())
    return make_error("keyholder answered with the wrong message");
  if (reply->payload[0] != 1) return make_error(reply->payload.substr(1));
  if (server_.tls_context() == nullptr) {
    HEARTH_INFO("tls", "certificate %s, certificate fingerprint SHA-256 %s",
                cfg_.certificate_path().c_str(), reply->payload.substr(1).c_str());
    Result<std::unique_ptr<net::TlsContext>> tls = net::TlsContext::create_server_remote(
        cfg_.certificate_path(), [this](const net::SignRequest& r) { return sign(r); });
    if (!tls.ok()) return tls.error();
    server_.set_tls(std::move(tls.value()));
  }
  return {};
}

Status Reactor::handle_control(ipc::Frame frame) {
  if (frame.type == kMsgAttachWorker && frame.payload.size() == 1 && frame.fds.size() == 1) {
    Role role = static_cast<Role>(frame.payload[0]);
    int fd = frame.fds[0];
    frame.fds.clear();
    if (role == Role::kAuth) return attach_auth(fd);
    if (role == Role::kKeyholder) return attach_keyholder(fd);
    close(fd);
    return make_error("attach for an unknown role");
  }
  if (frame.type == kMsgReloadConfig && frame.fds.empty()) {
    Result<config::Config> next = config::parse(frame.payload, "hearth.ini");
    if (!next.ok()) return next.error();  // the monitor validated it: fatal
    server_.apply_config(next.value());
    return {};
  }
  frame.close_fds();
  return make_error("unexpected control message " + std::to_string(frame.type));
}

void Reactor::on_io(uint32_t) {
  for (;;) {
    Result<std::optional<ipc::Frame>> f = ipc::recv_frame(kChannelFd);
    if (!f.ok()) {
      // The monitor is gone or broke the protocol: nothing supervises us.
      HEARTH_ERROR("reactor", "monitor channel: %s; exiting", f.error().message.c_str());
      _exit(1);
    }
    if (!f->has_value()) return;
    if (Status s = handle_control(std::move(**f)); !s.ok()) {
      HEARTH_ERROR("reactor", "%s; exiting", s.error().message.c_str());
      _exit(1);
    }
  }
}

int Reactor::main(const std::string& listen_spec) {
  // Listening sockets from the monitor, in order: "s" STARTTLS, "d" direct.
  int fd = kFirstListenerFd;
  for (char kind : listen_spec) {
    if (kind == ',') continue;
    Result<std::unique_ptr<net::Listener>> l = net::Listener::adopt(fd++);
    if (!l.ok()) return fail_role("reactor", l.error());
    server_.add_listener(std::move(l.value()), kind == 'd');
  }
  // Until both workers are attached (and the keyholder has its key) there is
  // nothing to serve: take the control messages synchronously.
  while (!server_.tls_context() || !auth_channel_.connected()) {
    Result<ipc::Frame> f = ipc::recv_frame_blocking(kChannelFd, 60000);
    if (!f.ok()) return fail_role("reactor", f.error());
    if (Status s = handle_control(std::move(f.value())); !s.ok())
      return fail_role("reactor", s.error());
  }
  // data.mdb and the modules, before the sandbox closes the file system.
  if (Status s = server_.open_modules(&accounts_); !s.ok()) return fail_role("reactor", s.error());
  server_.host()->set_users(std::move(users_));
  auth_channel_.set_on_event([this](ipc::Frame f) { on_account_event(std::move(f)); });
  ipc::RemoteAuthOptions auth_options;
  auth_options.timeout_ms = kAuthTimeoutMs;
  auth_ = ipc::make_remote_authenticator(&auth_channel_, auth_options);
  server_.set_authenticator(auth_.get());
  if (Status s = loop_->add(kChannelFd, EPOLLIN, this); !s.ok())
    return fail_role("reactor", s.error());
  if (Status s = server_.start(); !s.ok()) return fail_role("reactor", s.error());
  if (Status s = enter_sandbox(Role::kReactor, cfg_, false); !s.ok())
    return fail_role("reactor", s.error());
  arm_trim_timer();
  return server_.run();
}

// glibc returns heap memory to the kernel on free only from the top of the
// heap. What sessions give back in the middle of it (hibernated parsers,
// closed connections) stays resident until reused; after a login burst or a
// wave of hibernations that is megabytes. malloc_trim hands the whole free
// pages back (MADV_DONTNEED), but walks every free chunk: about 40 ms on a
// 128 MB heap cut into 200 000 free pieces. So it runs at most every 10 s,
// and only after at least kTrimAfterReleases parsers or connections were
// given back since the last time: never on a steady or idle server.
void Reactor::arm_trim_timer() {
#ifdef __GLIBC__
  constexpr uint64_t kTrimEveryMs = 10000;
  constexpr uint64_t kTrimAfterReleases = 64;
  loop_->add_timer(kTrimEveryMs, [this] {
    uint64_t released = xml::StreamParser::hibernations() + net::Connection::closed_total();
    if (released - released_at_trim_ >= kTrimAfterReleases) {
      malloc_trim(0);
      released_at_trim_ = released;
    }
    arm_trim_timer();
  });
#endif
}

}  // namespace

int reactor_main(const std::string& listen_spec) {
  Result<config::Config> cfg = read_config_fd();
  if (!cfg.ok()) return fail_role("reactor", cfg.error());
  log_set_level(cfg->log_level);
  Result<std::unique_ptr<core::Loop>> loop = core::Loop::create();
  if (!loop.ok()) return fail_role("reactor", loop.error());
  Reactor reactor(std::move(cfg.value()), std::move(loop.value()));
  return reactor.main(listen_spec);
}

}  // namespace hearth::proc
