// `hearth --role=X`: the entry of every child the monitor starts, and the
// two small workers. Each worker reads top to bottom the same way: open
// what it owns, harden, enter the sandbox, serve its one channel until the
// reactor goes away.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <map>

#include "core/audit.h"
#include "core/log.h"
#include "core/loop.h"
#include "ipc/channel.h"
#include "ipc/frame.h"
#include "ipc/messages.h"
#include "ipc/remote_auth.h"
#include "net/key_signer.h"
#include "proc/role_util.h"
#include "sandbox/sandbox.h"
#include "xmpp/account_store.h"

namespace hearth::proc {
namespace {
// Names the descriptor of the audit log (monitor.cc passes it).
constexpr char kAuditFdArg[] = "--audit-fd=";
}  // namespace

bool parse_role(std::string_view name, Role* out) {
  for (Role r : {Role::kReactor, Role::kKeyholder, Role::kAuth}) {
    if (name == role_name(r)) {
      *out = r;
      return true;
    }
  }
  return false;
}

Result<config::Config> read_config_fd() {
  std::string text;
  char buf[8192];
  off_t offset = 0;
  for (;;) {
    ssize_t n = pread(kConfigFd, buf, sizeof buf, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(std::string("reading the configuration: ") + strerror(errno));
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    offset += n;
    if (text.size() > (1u << 20)) return make_error("configuration larger than 1 MiB");
  }
  close(kConfigFd);
  return config::parse(text, "hearth.ini");
}

int fail_role(const char* role, const Error& error) {
  HEARTH_ERROR(role, "cannot start: %s", error.message.c_str());
  return 1;
}

#ifdef HEARTH_TEST_HOOKS
namespace {
// Test builds only (CMake HEARTH_TEST_HOOKS): SIGUSR2 makes the process attempt the system call
// named by $HEARTH_TEST_SYSCALL at start-up, which its filter must punish.
int g_test_call = 0;  // 0 execve, 1 openat of /etc/passwd, 2 socket

void on_test_signal(int) {
  switch (g_test_call) {
    case 1:
      syscall(SYS_openat, AT_FDCWD, "/etc/passwd", O_RDONLY);
      break;
    case 2:
      syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
      break;
    default: {
      char arg0[] = "/bin/true";
      char* argv[] = {arg0, nullptr};
      char* envp[] = {nullptr};
      syscall(SYS_execve, arg0, argv, envp);
    }
  }
  // Reached when the filter answered instead of killing: file probes get
  // EACCES by design (status 4); anything else got through (status 3).
  _exit(errno == EACCES ? 4 : 3);
}

void install_test_hooks() {
  const char* call = getenv("HEARTH_TEST_SYSCALL");
  std::string_view name = call ? call : "execve";
  g_test_call = name == "open" ? 1 : name == "socket" ? 2 : 0;
  struct sigaction sa {};
  sa.sa_handler = on_test_signal;
  sigaction(SIGUSR2, &sa, nullptr);
}
}  // namespace
#endif

Status enter_sandbox(Role role, const config::Config& cfg, bool holds_secrets) {
#ifdef HEARTH_TEST_HOOKS
  install_test_hooks();
#endif
  if (Status s = sandbox::harden_process(holds_secrets); !s.ok()) return s;
  // Landlock (best effort): after start-up every role opens at most
  // /dev/urandom, which this wolfSSL build reads to seed each RNG.
  Status landlock = sandbox::landlock_restrict({{"/dev/urandom", false}});
  if (!landlock.ok())
    HEARTH_DEBUG(role_name(role), "landlock: %s", landlock.error().message.c_str());
  if (cfg.sandbox_log)
    HEARTH_WARN(role_name(role),
                "[sandbox] mode = log: system calls outside the allow-list are only logged; "
                "use enforce in production");
  return sandbox::install(role, cfg.sandbox_log ? sandbox::Mode::kLog : sandbox::Mode::kEnforce);
}

// ipc::SignRequest carries net::SignRequest with the same one-byte wire
// values for both enums, so the conversion is a cast.
std::string encode_sign_request(const net::SignRequest& req) {
  ipc::SignRequest m;
  m.algorithm = static_cast<ipc::SignRequest::Algorithm>(req.algorithm);
  m.hash = static_cast<ipc::SignRequest::Hash>(req.hash_type);
  m.digest = req.digest;
  return m.encode();
}

Result<net::SignRequest> decode_sign_request(std::string_view payload) {
  Result<ipc::SignRequest> m = ipc::SignRequest::decode(payload);
  if (!m.ok()) return m.error();
  net::SignRequest req;
  req.algorithm = static_cast<net::SignRequest::Algorithm>(m->algorithm);
  req.hash_type = static_cast<net::SignRequest::Hash>(m->hash);
  req.digest = std::move(m->digest);
  return req;
}

// Ctrl-C in a terminal reaches the whole process group: the workers leave
// it to the monitor, which ends them after the reactor has closed its
// streams.
void ignore_terminal_interrupt() {
  signal(SIGINT, SIG_IGN);
}

int keyholder_main() {
  ignore_terminal_interrupt();
  Result<config::Config> cfg = read_config_fd();
  if (!cfg.ok()) return fail_role("keyholder", cfg.error());
  log_set_level(cfg->log_level);
  std::string cert = cfg->certificate_path();
  std::string key = cfg->key_path();
  if (cfg->certificate.empty()) {
    if (Status s = net::ensure_self_signed(cfg->domain, cert, key); !s.ok())
      return fail_role("keyholder", s.error());
  }
  Result<std::unique_ptr<net::KeySigner>> signer = net::KeySigner::load(key);
  if (!signer.ok()) return fail_role("keyholder", signer.error());
  if (Status s = signer.value()->check_certificate(cert); !s.ok())
    return fail_role("keyholder", s.error());
  Result<std::string> fingerprint = net::certificate_fingerprint(cert);
  if (!fingerprint.ok()) return fail_role("keyholder", fingerprint.error());
  net::release_ecc_tables();
  if (Status s = enter_sandbox(Role::kKeyholder, cfg.value(), true); !s.ok())
    return fail_role("keyholder", s.error());

  // The ECC table signing builds (about 820 KB, see release_ecc_tables)
  // pays off in a burst of logins; a server that signs now and then, as a
  // family's does, gives it back after kReleaseTablesAfterMs without one
  // (rebuilding it costs the next login about 3 ms).
  constexpr int kReleaseTablesAfterMs = 3000;
  bool may_hold_tables = true;
  for (;;) {
    if (may_hold_tables) {
      pollfd p{kChannelFd, POLLIN, 0};
      if (poll(&p, 1, kReleaseTablesAfterMs) == 0) {
        net::release_ecc_tables();
        may_hold_tables = false;
      }
    }
    Result<ipc::Frame> in = ipc::recv_frame_blocking(kChannelFd, -1);
    if (!in.ok()) {
      if (ipc::is_peer_closed(in.error())) return 0;  // the reactor is gone
      HEARTH_ERROR("keyholder", "%s", in.error().message.c_str());
      return 1;
    }
    ipc::Frame out;
    out.id = in->id;
    if (in->type == kMsgKeyHello && in->payload.empty() && in->fds.empty()) {
      out.type = kMsgKeyHelloReply;
      out.payload = std::string(1, '\1') + fingerprint.value();
    } else if (in->type == static_cast<uint16_t>(ipc::MsgType::kSignRequest) && in->fds.empty()) {
      Result<net::SignRequest> req = decode_sign_request(in->payload);
      if (!req.ok()) {
        // A malformed message is fatal in a worker (STYLE.md): restart clean.
        HEARTH_ERROR("keyholder", "bad sign request: %s", req.error().message.c_str());
        return 1;
      }
      ipc::SignReply reply;
      Result<std::string> sig = signer.value()->sign(req.value());
      may_hold_tables = true;
      reply.ok = sig.ok();
      if (sig.ok())
        reply.signature = std::move(sig.value());
      else
        reply.error = sig.error().message;
      out.type = static_cast<uint16_t>(ipc::MsgType::kSignReply);
      out.payload = reply.encode();
    } else {
      in->close_fds();
      HEARTH_ERROR("keyholder", "unexpected message %u", static_cast<unsigned>(in->type));
      return 1;
    }
    if (Status s = ipc::send_frame(kChannelFd, out); !s.ok()) {
      if (ipc::is_peer_closed(s.error())) return 0;
      HEARTH_ERROR("keyholder", "%s", s.error().message.c_str());
      return 1;
    }
  }
}

std::string control_socket_path(const std::string& data_dir) {
  return data_dir + "/control.sock";
}

// One request from `hearth user` on its own connection: an AccountRequest,
// answered, then the connection closes. A misbehaving client costs only
// its connection (bounded by the timeouts).
void serve_cli_connection(ipc::AuthService* service, int fd) {
  Result<ipc::Frame> req = ipc::recv_frame_blocking(fd, 5000);
  if (!req.ok()) {
    HEARTH_WARN("auth", "control connection: %s", req.error().message.c_str());
    return;
  }
  if (req->type != static_cast<uint16_t>(ipc::MsgType::kAccountRequest) || !req->fds.empty()) {
    req->close_fds();
    req->wipe_payload();
    HEARTH_WARN("auth", "control connection sent message %u; only account requests",
                static_cast<unsigned>(req->type));
    return;
  }
  Result<ipc::AccountRequest> what = ipc::AccountRequest::decode(req->payload);
  static const char* const kOps[] = {"create", "set password of", "remove", "list"};
  if (what.ok())
    HEARTH_INFO("auth", "hearth user: %s %s", kOps[static_cast<int>(what->op) & 3],
                what->op == ipc::AccountRequest::Op::kList ? "accounts" : what->username.c_str());
  Result<ipc::Frame> out = service->handle(req.value());
  req->wipe_payload();
  if (!out.ok()) {
    HEARTH_WARN("auth", "control connection: %s", out.error().message.c_str());
    return;
  }
  if (Status s = ipc::send_frame_blocking(fd, out.value(), 5000); !s.ok())
    HEARTH_WARN("auth", "control connection: %s", s.error().message.c_str());
  // Tell the reactor what changed: a new account can receive messages; a
  // removed one loses its sessions and its data (ARCHITECTURE.md §4).
  Result<ipc::AccountReply> reply = ipc::AccountReply::decode(out->payload);
  if (what.ok() && reply.ok() && what->op != ipc::AccountRequest::Op::kList) {
    static const char* const kActions[] = {"user_add", "user_passwd", "user_del", "user_list"};
    audit::event("admin_action", {{"action", kActions[static_cast<int>(what->op) & 3]},
                                  {"user", what->username},
                                  {"ok", reply->ok ? "true" : "false"},
                                  {"via", "hearth user"}});
  }
  if (what.ok() && reply.ok() && reply->ok &&
      (what->op == ipc::AccountRequest::Op::kCreate ||
       what->op == ipc::AccountRequest::Op::kRemove)) {
    ipc::AccountRequest notice;
    notice.op = what->op;
    notice.username = what->username;
    ipc::Frame event;
    event.type = static_cast<uint16_t>(ipc::MsgType::kAccountEvent);
    event.id = ipc::Channel::kEventId;
    event.payload = notice.encode();
    if (Status s = ipc::send_frame_blocking(kChannelFd, event, 5000); !s.ok())
      HEARTH_WARN("auth", "telling the reactor: %s", s.error().message.c_str());
  }
}

int auth_main() {
  ignore_terminal_interrupt();
  Result<config::Config> cfg = read_config_fd();
  if (!cfg.ok()) return fail_role("auth", cfg.error());
  log_set_level(cfg->log_level);
  Result<std::unique_ptr<xmpp::AccountStore>> store =
      xmpp::AccountStore::open(cfg->accounts_path());
  if (!store.ok()) return fail_role("auth", store.error());
  ipc::AuthServiceOptions options;
  options.fake_iterations = cfg->scram_iterations;
  options.limits.max_failures = cfg->max_failures;
  options.limits.failure_window_ms = cfg->failure_window * 1000;
  options.limits.ban_time_ms = cfg->ban_time * 1000;
  ipc::AuthService service(store.value().get(), options);
  if (Status s = enter_sandbox(Role::kAuth, cfg.value(), true); !s.ok())
    return fail_role("auth", s.error());
  // Replies held back by the failed-login back-off (auth_limits.h), by due
  // time: the worker's timers. One thread serves everyone meanwhile, so a
  // throttled client delays nobody else. (Failure replies only: no secret.)
  std::multimap<uint64_t, ipc::Frame> delayed;
  auto send_reply = [](const ipc::Frame& out) -> int {
    if (Status s = ipc::send_frame_blocking(kChannelFd, out, 5000); !s.ok()) {
      if (ipc::is_peer_closed(s.error())) return 0;
      HEARTH_ERROR("auth", "%s", s.error().message.c_str());
      return 1;
    }
    return -1;  // carry on
  };
  // Two peers: the reactor (SASL) and, through the monitor, `hearth user`
  // connections (account requests only).
  for (;;) {
    uint64_t now = core::Loop::now_ms();
    while (!delayed.empty() && delayed.begin()->first <= now) {
      if (int rc = send_reply(delayed.begin()->second); rc >= 0) return rc;
      delayed.erase(delayed.begin());
    }
    int timeout = delayed.empty() ? -1 : static_cast<int>(delayed.begin()->first - now);
    struct pollfd fds[2] = {{kChannelFd, POLLIN, 0}, {kAdminFd, POLLIN, 0}};
    if (poll(fds, 2, timeout) < 0) {
      if (errno == EINTR) continue;
      HEARTH_ERROR("auth", "poll: %s", strerror(errno));
      return 1;
    }
    if (fds[0].revents != 0) {
      Result<std::optional<ipc::Frame>> in = ipc::recv_frame(kChannelFd);
      if (!in.ok()) {
        if (ipc::is_peer_closed(in.error())) return 0;  // the reactor is gone
        HEARTH_ERROR("auth", "%s", in.error().message.c_str());
        return 1;
      }
      if (in->has_value()) {
        uint64_t delay_ms = 0;
        Result<ipc::Frame> out = service.handle(**in, &delay_ms);
        (*in)->wipe_payload();
        if (!out.ok()) {
          HEARTH_ERROR("auth", "%s", out.error().message.c_str());  // fatal: restart clean
          return 1;
        }
        if (delay_ms > 0) {
          delayed.emplace(core::Loop::now_ms() + delay_ms, std::move(out.value()));
        } else if (int rc = send_reply(out.value()); rc >= 0) {
          return rc;
        }
      }
    }
    if (fds[1].revents != 0) {
      Result<std::optional<ipc::Frame>> in = ipc::recv_frame(kAdminFd);
      if (!in.ok()) {
        if (ipc::is_peer_closed(in.error())) return 0;  // the monitor is gone
        HEARTH_ERROR("auth", "%s", in.error().message.c_str());
        return 1;
      }
      if (!in->has_value()) continue;
      ipc::Frame& f = **in;
      if (f.type != kMsgAdminClient || f.fds.size() != 1) {
        f.close_fds();
        HEARTH_ERROR("auth", "unexpected message from the monitor");
        return 1;
      }
      int client = f.fds[0];
      serve_cli_connection(&service, client);
      close(client);
    }
  }
}

// The audit log (core/audit.h): the monitor opened it and passed it at the
// descriptor named by --audit-fd=N. Events of this process go there, tagged
// with the role.
void adopt_audit_fd(Role role, const std::vector<std::string>& args) {
  audit::set_process(role_name(role));
  for (const std::string& a : args) {
    if (a.rfind(kAuditFdArg, 0) != 0) continue;
    std::string n = a.substr(strlen(kAuditFdArg));
    char* end = nullptr;
    long fd = strtol(n.c_str(), &end, 10);
    if (n.empty() || *end != '\0' || fd <= kConfigFd || fd > 1024 ||
        fcntl(static_cast<int>(fd), F_GETFD) < 0) {
      HEARTH_WARN(role_name(role), "no audit log descriptor at %s; events go to the log",
                  a.c_str());
      return;
    }
    fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
    audit::set_fd(static_cast<int>(fd));
  }
}

int role_main(const std::vector<std::string>& args) {
  // args[0] is "--role=X"; the reactor also gets "--listen=..."; every role
  // may get "--audit-fd=N".
  Role role;
  if (args.empty() || args[0].rfind("--role=", 0) != 0 || !parse_role(args[0].substr(7), &role)) {
    HEARTH_ERROR("server", "unknown role; roles are started by `hearth run` only");
    return 2;
  }
  adopt_audit_fd(role, args);
  switch (role) {
    case Role::kReactor: {
      std::string listen;
      for (const std::string& a : args)
        if (a.rfind("--listen=", 0) == 0) listen = a.substr(9);
      return reactor_main(listen);
    }
    case Role::kKeyholder:
      return keyholder_main();
    case Role::kAuth:
      return auth_main();
  }
  return 2;
}

}  // namespace hearth::proc
