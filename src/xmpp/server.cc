#include "xmpp/server.h"

#include <signal.h>
#include <unistd.h>

#include "core/log.h"
#include "net/connection.h"

namespace hearth::xmpp {
namespace {
constexpr uint64_t kShutdownGraceMs = 2000;
}  // namespace

Server::Server(config::Config config, core::Loop* loop)
    : config_(std::move(config)), loop_(loop), router_(config_.domain) {}

Server::~Server() {
  streams_.clear();
  graveyard_.clear();
}

void Server::add_listener(std::unique_ptr<net::Listener> listener, bool direct_tls) {
  listeners_.emplace_back(std::move(listener), direct_tls);
}

Status Server::start() {
  if (!tls_ || !auth_) return make_error("internal: server started without TLS or authenticator");
  for (auto& [listener, direct] : listeners_) {
    bool d = direct;
    if (Status s = listener->start(
            loop_, [this, d](int fd, std::string peer) { accept(fd, std::move(peer), d); });
        !s.ok())
      return s;
  }
  // SIGHUP is the monitor's: it re-reads the INI and sends it here.
  signal(SIGHUP, SIG_IGN);
  if (Status s = loop_->watch_signals({SIGTERM, SIGINT}, [this](int sig) { on_signal(sig); });
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
  auto conn = std::make_unique<net::Connection>(loop_, fd, peer, tls_.get(), direct_tls);
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

void Server::apply_config(const config::Config& next) {
  // Only what can change safely at run time; the rest needs a restart.
  log_set_level(next.log_level);
  config_.max_stanza_size = next.max_stanza_size;
  config_.pre_auth_timeout = next.pre_auth_timeout;
  HEARTH_INFO("server", "configuration reloaded");
}

int Server::run() {
  HEARTH_INFO("server", "ready: serving %s", config_.domain.c_str());
  loop_->run();
  net::Connection::flush_all();
  HEARTH_INFO("server", "stopped");
  return 0;
}

}  // namespace hearth::xmpp
