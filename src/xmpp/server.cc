#include "xmpp/server.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "net/connection.h"

namespace hearth::xmpp {
namespace {
constexpr uint64_t kShutdownGraceMs = 2000;

Status ensure_dir(const std::string& path) {
  if (mkdir(path.c_str(), 0700) == 0) return {};
  if (errno != EEXIST)
    return make_error("cannot create data_dir " + path + ": " + strerror(errno) +
                      "; create it or set [server] data_dir");
  struct stat st;
  if (stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return make_error("data_dir " + path + " is not a directory; set [server] data_dir");
  return {};
}
}  // namespace

Server::Server(config::Config config) : config_(std::move(config)), router_(config_.domain) {}

Server::~Server() {
  streams_.clear();
  graveyard_.clear();
}

Status Server::start() {
  Result<std::unique_ptr<core::Loop>> loop = core::Loop::create();
  if (!loop.ok()) return loop.error();
  loop_ = std::move(loop.value());

  if (Status s = ensure_dir(config_.data_dir); !s.ok()) return s;

  // TLS: configured certificate, or a self-signed one made on first start.
  std::string cert = config_.certificate_path();
  std::string key = config_.key_path();
  if (config_.certificate.empty()) {
    if (Status s = net::ensure_self_signed(config_.domain, cert, key); !s.ok()) return s;
  }
  Result<std::unique_ptr<net::TlsContext>> tls = net::TlsContext::create_server(cert, key);
  if (!tls.ok()) return tls.error();
  tls_ = std::move(tls.value());
  HEARTH_INFO("tls", "certificate %s, certificate fingerprint SHA-256 %s", cert.c_str(),
              tls_->fingerprint_sha256().c_str());

  Result<std::unique_ptr<AccountStore>> accounts = AccountStore::open(config_.accounts_path());
  if (!accounts.ok()) return accounts.error();
  accounts_ = std::move(accounts.value());
  // Unknown users get fake credentials with the same iteration count as
  // real accounts, so the exchange does not tell them apart.
  LocalAuthOptions auth_options;
  auth_options.fake_iterations = config_.scram_iterations;
  auth_ = make_local_authenticator(
      accounts_.get(), [this](std::function<void()> fn) { loop_->post(std::move(fn)); },
      auth_options);

  struct Port {
    uint16_t port;
    bool direct;
    const char* name;
  };
  for (const Port& p : {Port{config_.port, false, "c2s-starttls"},
                        Port{config_.direct_tls_port, true, "c2s-direct-tls"}}) {
    for (const std::string& address : config_.interfaces) {
      Result<std::unique_ptr<net::Listener>> l = net::Listener::bind(address, p.port);
      if (!l.ok()) return l.error();
      bool direct = p.direct;
      if (Status s = l.value()->start(
              loop_.get(),
              [this, direct](int fd, std::string peer) { accept(fd, std::move(peer), direct); });
          !s.ok())
        return s;
      HEARTH_INFO("net", "listening %s on %s", p.name, l.value()->address().c_str());
      listeners_.push_back(std::move(l.value()));
    }
  }

  if (Status s =
          loop_->watch_signals({SIGTERM, SIGINT, SIGHUP}, [this](int sig) { on_signal(sig); });
      !s.ok())
    return s;
  signal(SIGPIPE, SIG_IGN);
  loop_->on_turn_end([this] {
    net::Connection::flush_all();
    graveyard_.clear();
  });
  return {};
}

void Server::accept(int fd, std::string peer, bool direct_tls) {
  if (shutting_down_) {
    close(fd);
    return;
  }
  HEARTH_DEBUG("c2s", "%s: connected (%s)", peer.c_str(), direct_tls ? "direct TLS" : "STARTTLS");
  auto conn = std::make_unique<net::Connection>(loop_.get(), fd, peer, tls_.get(), direct_tls);
  auto stream = std::make_unique<C2sStream>(this, std::move(conn), direct_tls);
  C2sStream* raw = stream.get();
  streams_.emplace(raw, std::move(stream));
  if (Status s = raw->start(); !s.ok()) {
    HEARTH_WARN("c2s", "%s: %s", peer.c_str(), s.error().message.c_str());
    auto it = streams_.find(raw);
    graveyard_.push_back(std::move(it->second));
    streams_.erase(it);
  }
}

void Server::stream_closed(C2sStream* stream) {
  auto it = streams_.find(stream);
  if (it == streams_.end()) return;
  graveyard_.push_back(std::move(it->second));
  streams_.erase(it);
  if (shutting_down_ && streams_.empty()) loop_->stop();
}

void Server::on_signal(int sig) {
  if (sig == SIGHUP) {
    reload();
    return;
  }
  HEARTH_INFO("server", "%s: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
  shutdown();
}

void Server::shutdown() {
  if (shutting_down_) return;
  shutting_down_ = true;
  listeners_.clear();
  // Every stream hears why (RFC 6120 §4.9.3.17) before it closes.
  std::vector<C2sStream*> open;
  for (auto& [raw, owned] : streams_)
    open.push_back(raw);
  for (C2sStream* s : open)
    s->stream_error("system-shutdown", "the server is shutting down");
  if (streams_.empty()) {
    loop_->stop();
    return;
  }
  loop_->add_timer(kShutdownGraceMs, [this] { loop_->stop(); });
}

void Server::reload() {
  if (config_path_.empty()) return;
  Result<config::Config> next = config::load_file(config_path_);
  if (!next.ok()) {
    HEARTH_ERROR("server", "reload refused, keeping the running configuration: %s",
                 next.error().message.c_str());
    return;
  }
  // Only what can change safely at run time; the rest needs a restart.
  log_set_level(next->log_level);
  config_.max_stanza_size = next->max_stanza_size;
  config_.pre_auth_timeout = next->pre_auth_timeout;
  HEARTH_INFO("server", "configuration reloaded from %s", config_path_.c_str());
}

int Server::run() {
  HEARTH_INFO("server", "ready: serving %s", config_.domain.c_str());
  loop_->run();
  net::Connection::flush_all();
  HEARTH_INFO("server", "stopped");
  return 0;
}

}  // namespace hearth::xmpp
