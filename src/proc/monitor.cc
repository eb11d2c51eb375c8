// The monitor: the process `hearth run` starts. It validates the INI, binds
// the listening sockets, prepares data_dir, drops to the service user and
// starts the reactor and the workers as fresh processes (fork + exec of its
// own binary with --role=X). It restarts a child that dies (with back-off;
// a crash loop gives up), relays SIGHUP, and on SIGTERM shuts everything
// down in order. It never parses network input.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <memory>

#include "core/audit.h"
#include "core/config.h"
#include "core/log.h"
#include "core/loop.h"
#include "ipc/frame.h"
#include "net/listener.h"
#include "proc/privdrop.h"
#include "proc/proc.h"

extern char** environ;

namespace hearth::proc {
namespace {

constexpr uint64_t kFirstBackoffMs = 100;
constexpr uint64_t kMaxBackoffMs = 5000;
constexpr int kCrashLoopRestarts = 5;           // this many restarts ...
constexpr uint64_t kCrashLoopWindowMs = 60000;  // ... within this window: give up
constexpr uint64_t kShutdownGraceMs = 5000;
// Tells a child where its audit log descriptor is (roles.cc reads it).
constexpr char kAuditFdArg[] = "--audit-fd=";

struct Child {
  Role role;
  pid_t pid = -1;
  uint64_t backoff_ms = kFirstBackoffMs;
  std::vector<uint64_t> restarts;  // times of recent restarts
  core::Loop::TimerId restart_timer = 0;
};

class Monitor;

// Accepts `hearth user` connections on the control socket and passes each
// to the auth worker, unread.
class ControlListener : public core::IoHandler {
 public:
  explicit ControlListener(Monitor* monitor) : monitor_(monitor) {}
  void on_io(uint32_t events) override;

 private:
  Monitor* monitor_;
};

class Monitor {
 public:
  Monitor(config::Config cfg, std::string config_path, int config_fd, int exe_fd)
      : cfg_(std::move(cfg)),
        config_path_(std::move(config_path)),
        config_fd_(config_fd),
        exe_fd_(exe_fd) {}

  int run();
  void accept_control();

 private:
  Status open_control_socket();
  Status open_audit_log(const ServiceUser& user);
  Status bind_listeners();
  // Starts `role`. For a worker, the reactor receives the other end of its
  // new channel; for the reactor, every worker is (re)connected.
  Status start(Role role);
  pid_t spawn(Role role, int channel_fd, int admin_fd);
  Status attach_worker(Role role, int reactor_end);
  void on_signal(int sig);
  void reload();
  void reap();
  void schedule_restart(Child& c);
  void shutdown(int code);
  void maybe_finish();

  config::Config cfg_;
  std::string config_path_;
  int config_fd_;
  int exe_fd_;
  std::unique_ptr<core::Loop> loop_;
  std::vector<std::pair<std::unique_ptr<net::Listener>, bool>> listeners_;
  int reactor_channel_ = -1;  // our end of the reactor's control channel
  int auth_admin_ = -1;       // our end of the auth worker's admin channel
  int control_fd_ = -1;       // listening control socket
  int audit_fd_ = -1;         // the audit log, O_APPEND; every child gets it
  ControlListener control_listener_{this};
  std::map<Role, Child> children_;
  bool stopping_ = false;
  int exit_code_ = 0;
};

Status Monitor::bind_listeners() {
  struct Port {
    uint16_t port;
    bool direct;
    const char* name;
  };
  for (const Port& p : {Port{cfg_.port, false, "c2s-starttls"},
                        Port{cfg_.direct_tls_port, true, "c2s-direct-tls"}}) {
    for (const std::string& address : cfg_.interfaces) {
      Result<std::unique_ptr<net::Listener>> l = net::Listener::bind(address, p.port);
      if (!l.ok()) return l.error();
      HEARTH_INFO("net", "listening %s on %s", p.name, l.value()->address().c_str());
      listeners_.emplace_back(std::move(l.value()), p.direct);
    }
  }
  return {};
}

pid_t Monitor::spawn(Role role, int channel_fd, int admin_fd) {
  std::vector<std::string> args = {"hearth", std::string("--role=") + role_name(role)};
  std::vector<int> keep;  // fds the child gets, in order, from kChannelFd up
  keep.push_back(channel_fd);
  keep.push_back(config_fd_);
  if (role == Role::kAuth) keep.push_back(admin_fd);  // kAdminFd
  if (role == Role::kReactor) {
    std::string listen = "--listen=";
    for (size_t i = 0; i < listeners_.size(); ++i) {
      if (i) listen += ",";
      listen += listeners_[i].second ? "d" : "s";
      keep.push_back(listeners_[i].first->fd());
    }
    args.push_back(listen);
  }
  if (audit_fd_ >= 0) {
    // Last, so that the fixed numbers above stay as they are.
    args.push_back(kAuditFdArg + std::to_string(kChannelFd + static_cast<int>(keep.size())));
    keep.push_back(audit_fd_);
  }
  pid_t pid = fork();
  if (pid != 0) return pid;  // parent (or -1)
  // Child: move the descriptors to their fixed numbers. First above every
  // target, so that no dup2 overwrites a source still needed.
  int high = kChannelFd + static_cast<int>(keep.size()) + 64;
  int exe = fcntl(exe_fd_, F_DUPFD_CLOEXEC, high);  // out of the way of the targets
  if (exe < 0) _exit(127);
  for (size_t i = 0; i < keep.size(); ++i) {
    int moved = fcntl(keep[i], F_DUPFD, high);
    if (moved < 0) _exit(127);
    keep[i] = moved;
  }
  for (size_t i = 0; i < keep.size(); ++i) {
    if (dup2(keep[i], kChannelFd + static_cast<int>(i)) < 0) _exit(127);
  }
  // Nothing else crosses exec: every other fd of ours is close-on-exec.
  for (size_t i = 0; i < keep.size(); ++i)
    close(keep[i]);
  // The monitor receives signals through signalfd; the child starts clean.
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  std::vector<char*> argv;
  for (std::string& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  // execveat on our own binary, opened before the privilege drop: it needs
  // only execute permission on the file, not search permission on its path.
  syscall(SYS_execveat, exe, "", argv.data(), environ, AT_EMPTY_PATH);
  _exit(127);
}

Status Monitor::attach_worker(Role role, int reactor_end) {
  ipc::Frame f;
  f.type = kMsgAttachWorker;
  f.payload.push_back(static_cast<char>(role));
  f.fds.push_back(reactor_end);
  Status s = ipc::send_frame(reactor_channel_, f);
  close(reactor_end);
  return s;
}

Status Monitor::start(Role role) {
  Child& c = children_[role];
  c.role = role;
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0)
    return make_error(std::string("socketpair: ") + strerror(errno));
  int admin[2] = {-1, -1};
  if (role == Role::kAuth && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, admin) != 0) {
    close(pair[0]);
    close(pair[1]);
    return make_error(std::string("socketpair: ") + strerror(errno));
  }
  pid_t pid = spawn(role, pair[1], admin[1]);
  close(pair[1]);
  if (admin[1] >= 0) close(admin[1]);
  if (pid < 0) {
    close(pair[0]);
    if (admin[0] >= 0) close(admin[0]);
    return make_error(std::string("fork: ") + strerror(errno));
  }
  if (role == Role::kAuth) {
    if (auth_admin_ >= 0) close(auth_admin_);
    auth_admin_ = admin[0];
  }
  c.pid = pid;
  HEARTH_INFO("monitor", "started %s (pid %d)", role_name(role), static_cast<int>(pid));
  if (role == Role::kReactor) {
    if (reactor_channel_ >= 0) close(reactor_channel_);
    reactor_channel_ = pair[0];
    // A new reactor needs fresh channels to fresh workers: the old ones
    // were connected to the reactor that died.
    for (Role w : {Role::kKeyholder, Role::kAuth}) {
      Child& wc = children_[w];
      if (wc.pid > 0) {
        kill(wc.pid, SIGTERM);  // reaped and restarted through reap()
      } else if (!wc.restart_timer) {
        if (Status s = start(w); !s.ok()) return s;
      }
    }
    return {};
  }
  if (reactor_channel_ < 0) {
    close(pair[0]);
    return make_error("no reactor to attach the worker to");
  }
  return attach_worker(role, pair[0]);
}

void Monitor::schedule_restart(Child& c) {
  uint64_t now = core::Loop::now_ms();
  std::vector<uint64_t> recent;
  for (uint64_t t : c.restarts)
    if (now - t < kCrashLoopWindowMs) recent.push_back(t);
  c.restarts.swap(recent);
  if (static_cast<int>(c.restarts.size()) >= kCrashLoopRestarts) {
    HEARTH_ERROR("monitor", "%s restarted %d times within %llu s: giving up; see the errors above",
                 role_name(c.role), kCrashLoopRestarts,
                 static_cast<unsigned long long>(kCrashLoopWindowMs / 1000));
    shutdown(1);
    return;
  }
  c.restarts.push_back(now);
  uint64_t delay = c.backoff_ms;
  c.backoff_ms = std::min(c.backoff_ms * 2, kMaxBackoffMs);
  Role role = c.role;
  c.restart_timer = loop_->add_timer(delay, [this, role] {
    children_[role].restart_timer = 0;
    if (stopping_) return;
    // A worker needs a reactor to attach to; when the reactor is down too,
    // its restart starts the workers.
    if (role != Role::kReactor && reactor_channel_ < 0) return;
    if (Status s = start(role); !s.ok()) {
      HEARTH_ERROR("monitor", "cannot restart %s: %s", role_name(role), s.error().message.c_str());
      shutdown(1);
    }
  });
}

void Monitor::reap() {
  for (;;) {
    int status = 0;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;
    for (auto& [role, c] : children_) {
      if (c.pid != pid) continue;
      c.pid = -1;
      if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS) {
        std::string pid_text = std::to_string(pid);
        audit::event("sandbox_violation", {{"role", role_name(role)}, {"pid", pid_text, true}});
      }
      if (WIFSIGNALED(status)) {
        HEARTH_LOG(stopping_ ? LogLevel::kInfo : LogLevel::kError, "monitor",
                   "%s (pid %d) killed by signal %d%s", role_name(role), static_cast<int>(pid),
                   WTERMSIG(status), WTERMSIG(status) == SIGSYS ? " (sandbox violation)" : "");
      } else {
        HEARTH_LOG(stopping_ || WEXITSTATUS(status) == 0 ? LogLevel::kInfo : LogLevel::kError,
                   "monitor", "%s (pid %d) exited with status %d", role_name(role),
                   static_cast<int>(pid), WEXITSTATUS(status));
      }
      if (!stopping_) {
        if (role == Role::kReactor) {
          close(reactor_channel_);
          reactor_channel_ = -1;
        }
        schedule_restart(c);
      }
      break;
    }
  }
}

void Monitor::on_signal(int sig) {
  switch (sig) {
    case SIGCHLD:
      reap();
      maybe_finish();
      return;
    case SIGHUP:
      reload();
      return;
    default:
      HEARTH_INFO("monitor", "%s: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
      shutdown(0);
  }
}

void Monitor::reload() {
  // Validate first, then hand the text to the reactor, which swaps what can
  // change at run time. A bad file keeps the running configuration.
  std::string text;
  Result<config::Config> next = config::load_file(config_path_, &text);
  if (!next.ok()) {
    HEARTH_ERROR("monitor", "reload refused, keeping the running configuration: %s",
                 next.error().message.c_str());
    return;
  }
  if (reactor_channel_ < 0) return;
  ipc::Frame f;
  f.type = kMsgReloadConfig;
  f.payload = std::move(text);
  if (Status s = ipc::send_frame(reactor_channel_, f); !s.ok())
    HEARTH_ERROR("monitor", "reload: %s", s.error().message.c_str());
  log_set_level(next->log_level);
}

void Monitor::shutdown(int code) {
  if (stopping_) return;
  stopping_ = true;
  exit_code_ = code;
  // The reactor first: it closes every stream with <system-shutdown/>. The
  // workers end when their channel closes, or with the grace timer.
  for (auto& [role, c] : children_) {
    if (c.restart_timer) loop_->cancel_timer(c.restart_timer);
    c.restart_timer = 0;
    if (c.pid > 0 && role == Role::kReactor) kill(c.pid, SIGTERM);
  }
  loop_->add_timer(kShutdownGraceMs / 2, [this] {
    for (auto& [role, c] : children_)
      if (c.pid > 0) kill(c.pid, SIGTERM);
  });
  loop_->add_timer(kShutdownGraceMs, [this] {
    for (auto& [role, c] : children_)
      if (c.pid > 0) kill(c.pid, SIGKILL);
  });
  maybe_finish();
}

void Monitor::maybe_finish() {
  if (!stopping_) return;
  bool reactor_gone = children_[Role::kReactor].pid <= 0;
  if (reactor_gone) {
    for (auto& [role, c] : children_)
      if (c.pid > 0) kill(c.pid, SIGTERM);
  }
  for (auto& [role, c] : children_)
    if (c.pid > 0) return;
  loop_->stop();
}

void ControlListener::on_io(uint32_t) {
  monitor_->accept_control();
}

Status Monitor::open_control_socket() {
  std::string path = control_socket_path(cfg_.data_dir);
  struct sockaddr_un addr {};
  if (path.size() >= sizeof addr.sun_path)
    return make_error("control socket path " + path + " is too long; use a shorter data_dir");
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return make_error(std::string("socket: ") + strerror(errno));
  unlink(path.c_str());     // left by a server that did not stop cleanly
  mode_t old = umask(077);  // 0600: only the service user (and root) connect
  int rc = bind(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr);
  umask(old);
  if (rc != 0 || listen(fd, 16) != 0) {
    int e = errno;
    close(fd);
    return make_error("control socket " + path + ": " + strerror(e));
  }
  control_fd_ = fd;
  return loop_->add(fd, EPOLLIN, &control_listener_);
}

void Monitor::accept_control() {
  for (;;) {
    int client = accept4(control_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) return;
    if (auth_admin_ < 0 || children_[Role::kAuth].pid <= 0) {
      close(client);  // the CLI reports that the server is not ready
      continue;
    }
    ipc::Frame f;
    f.type = kMsgAdminClient;
    f.fds.push_back(client);
    if (Status s = ipc::send_frame(auth_admin_, f); !s.ok())
      HEARTH_WARN("monitor", "control connection: %s", s.error().message.c_str());
    close(client);
  }
}

Status Monitor::open_audit_log(const ServiceUser& user) {
  // Opened here, before the privilege drop, so that the file can live where
  // the service user may not create files (/var/log/hearth/audit.log) and
  // be owned by it. Not reopened on SIGHUP: with O_APPEND, logrotate's
  // copytruncate rotates it safely.
  std::string path = cfg_.audit_path();
  int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return make_error("audit log " + path + ": " + strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return make_error("audit log " + path + ": not a regular file");
  }
  if (user.change && fchown(fd, user.uid, user.gid) != 0) {
    int e = errno;
    close(fd);
    return make_error("audit log " + path + ": chown: " + strerror(e));
  }
  // An older file with wider permissions is narrowed: it names users and IPs.
  if ((st.st_mode & 07777) != 0600 && fchmod(fd, 0600) != 0)
    HEARTH_WARN("monitor", "audit log %s: chmod 0600: %s", path.c_str(), strerror(errno));
  audit_fd_ = fd;
  audit::set_fd(fd);
  audit::set_process("monitor");
  HEARTH_INFO("monitor", "audit log %s", path.c_str());
  return {};
}

int Monitor::run() {
  Result<std::unique_ptr<core::Loop>> loop = core::Loop::create();
  if (!loop.ok()) {
    HEARTH_ERROR("monitor", "%s", loop.error().message.c_str());
    return 1;
  }
  loop_ = std::move(loop.value());
  Result<ServiceUser> user = resolve_service_user(cfg_.user);
  if (!user.ok()) {
    HEARTH_ERROR("monitor", "cannot start: %s", user.error().message.c_str());
    return 1;
  }
  if (Status s = prepare_data_dir(cfg_.data_dir, user.value()); !s.ok()) {
    HEARTH_ERROR("monitor", "cannot start: %s", s.error().message.c_str());
    return 1;
  }
  if (Status s = open_audit_log(user.value()); !s.ok()) {
    HEARTH_ERROR("monitor", "cannot start: %s", s.error().message.c_str());
    return 1;
  }
  if (Status s = bind_listeners(); !s.ok()) {
    HEARTH_ERROR("monitor", "cannot start: %s", s.error().message.c_str());
    return 1;
  }
  if (Status s = drop_privileges(user.value()); !s.ok()) {
    HEARTH_ERROR("monitor", "cannot start: %s", s.error().message.c_str());
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  // Without it `hearth user` still works, writing accounts.mdb directly.
  if (Status s = open_control_socket(); !s.ok())
    HEARTH_WARN("monitor", "no control socket: %s", s.error().message.c_str());
  if (Status s = loop_->watch_signals({SIGCHLD, SIGTERM, SIGINT, SIGHUP},
                                      [this](int sig) { on_signal(sig); });
      !s.ok()) {
    HEARTH_ERROR("monitor", "cannot start: %s", s.error().message.c_str());
    return 1;
  }
  if (Status s = start(Role::kReactor); !s.ok()) {
    HEARTH_ERROR("monitor", "cannot start: %s", s.error().message.c_str());
    shutdown(1);
  }
  loop_->run();
  if (control_fd_ >= 0) {
    close(control_fd_);
    unlink(control_socket_path(cfg_.data_dir).c_str());
  }
  HEARTH_INFO("monitor", "stopped");
  return exit_code_;
}

}  // namespace

int run_monitor(const std::string& config_path) {
  Result<config::Config> cfg = config::load_file(config_path);
  if (!cfg.ok()) {
    HEARTH_ERROR("server", "cannot start: %s", cfg.error().message.c_str());
    return 1;
  }
  log_set_level(cfg->log_level);
  HEARTH_INFO("server", "hearth %s starting with %s", HEARTH_VERSION, config_path.c_str());
  // One descriptor per client: take the hard limit (inherited by the
  // children), since the soft default of 1024 would cap the reactor at
  // about a thousand connections.
  struct rlimit nofile;
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &nofile) != 0)
      HEARTH_WARN("server", "raising the open-file limit: %s", strerror(errno));
  }
  // Children read the INI through this descriptor, so the file need not be
  // readable by the service user, and all processes see the same text.
  int config_fd = open(config_path.c_str(), O_RDONLY | O_CLOEXEC);
  int exe_fd = open("/proc/self/exe", O_PATH | O_CLOEXEC);
  if (config_fd < 0 || exe_fd < 0) {
    HEARTH_ERROR("server", "cannot start: opening %s: %s",
                 config_fd < 0 ? config_path.c_str() : "/proc/self/exe", strerror(errno));
    return 1;
  }
  Monitor monitor(std::move(cfg.value()), config_path, config_fd, exe_fd);
  return monitor.run();
}

}  // namespace hearth::proc
