#include "xmpp/server.h"

#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/audit.h"
#include "core/log.h"
#include "net/connection.h"

namespace hearth::xmpp {
namespace {
constexpr uint64_t kShutdownGraceMs = 2000;
}  // namespace

Server::Server(config::Config config, core::Loop* loop)
    : config_(std::move(config)), loop_(loop), router_(config_.domain) {
  configure_limits();
}

void Server::configure_limits() {
  const auto& c = config_.limits;
  net::ConnectionLimits l;
  l.max_per_ip = c.max_per_ip;
  l.max_connections = c.max_connections;
  l.connect_rate = c.connect_rate;
  l.trust_loopback = c.trust_loopback;
  for (const std::string& text : c.trusted_networks) {
    Result<net::Cidr> n = net::Cidr::parse(text);
    if (n.ok()) {
      l.trusted.push_back(n.value());
    } else {  // the config loader checked them; this cannot happen
      HEARTH_WARN("server", "[limits] trusted_networks: %s", n.error().message.c_str());
    }
  }
  limiter_.configure(std::move(l), core::Loop::now_ms());
}

Server::~Server() {
  streams_.clear();
  graveyard_.clear();
  resumable_.clear();
  sessions_.clear();
  session_graveyard_.clear();
  host_.reset();
  db_.reset();
}

Status Server::open_modules(modules::AccountBackend* accounts) {
  storage::EnvOptions options;
  options.dbs = modules::Host::all_tables();
  Result<std::unique_ptr<storage::Env>> db = storage::Env::open(config_.data_path(), options);
  if (!db.ok()) return db.error();
  db_ = std::move(db.value());
  modules::Host::Deps deps;
  deps.config = &config_;
  deps.loop = loop_;
  deps.router = &router_;
  deps.db = db_.get();
  deps.accounts = accounts;
  Result<std::unique_ptr<modules::Host>> host = modules::Host::create(deps);
  if (!host.ok()) return host.error();
  host_ = std::move(host.value());
  host_->set_preauth_lookup([this](uint64_t id) -> modules::PreauthStream* {
    for (auto& [raw, owned] : streams_)
      if (raw->id() == id) return raw;
    return nullptr;
  });
  return {};
}

void Server::add_listener(std::unique_ptr<net::Listener> listener, bool direct_tls) {
  listeners_.emplace_back(std::move(listener), direct_tls);
}

Status Server::start() {
  if (!tls_ || !auth_) return make_error("internal: server started without TLS or authenticator");
  if (!host_) return make_error("internal: server started without modules");
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
    host_->end_turn();
    net::Connection::flush_all();
    graveyard_.clear();
    session_graveyard_.clear();
  });
  return {};
}

void Server::accept(int fd, std::string peer, bool direct_tls) {
  if (shutting_down_) {
    close(fd);
    return;
  }
  // [limits], before any TLS or XML work: refused sockets close at once.
  net::ConnectionSlot slot;
  if (std::optional<net::IpAddress> ip = net::IpAddress::from_peer(peer)) {
    net::ConnectionLimiter::Verdict v = limiter_.admit(*ip, core::Loop::now_ms(), &slot);
    if (v != net::ConnectionLimiter::Verdict::kAccept) {
      refuse(fd, *ip, v);
      return;
    }
  }
  HEARTH_DEBUG("c2s", "%s: connected (%s)", peer.c_str(), direct_tls ? "direct TLS" : "STARTTLS");
  auto conn = std::make_unique<net::Connection>(loop_, fd, peer, tls_.get(), direct_tls);
  conn->set_slot(std::move(slot));
  conn->set_tls_handshake_timeout(config_.limits.tls_handshake_timeout * 1000u);
  // One budget from the first byte on: the TLS handshake and SASL need a
  // few kB, far below c2s_burst, so an equal pre-auth budget costs nothing
  // and the pre-auth stanza size (16 KiB) and timeouts bound the rest.
  conn->set_input_limit({config_.limits.c2s_rate, config_.limits.c2s_burst});
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

void Server::refuse(int fd, const net::IpAddress& ip, net::ConnectionLimiter::Verdict why) {
  // A reset, not a FIN: no TIME_WAIT left on our side by a flood.
  struct linger lg {};
  lg.l_onoff = 1;
  lg.l_linger = 0;
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(fd);
  std::string addr = ip.to_string();
  const char* reason = net::ConnectionLimiter::reason(why);
  HEARTH_DEBUG("c2s", "%s: connection refused (%s)", addr.c_str(), reason);
  uint64_t now = core::Loop::now_ms();
  if (why == net::ConnectionLimiter::Verdict::kGlobal ||
      why == net::ConnectionLimiter::Verdict::kTable) {
    // The whole server is full, not one address: the admin should know
    // (once a minute).
    if (last_full_warning_ms_ == 0 || now - last_full_warning_ms_ >= 60000) {
      last_full_warning_ms_ = now;
      HEARTH_WARN("server", "refusing new connections: %s (%zu open, %zu addresses tracked)",
                  why == net::ConnectionLimiter::Verdict::kGlobal
                      ? "[limits] max_connections reached"
                      : "too many addresses with recent connections",
                  limiter_.open(), limiter_.entries());
    }
  }
  // At most one event per IP per minute, with the count of those left out.
  uint64_t suppressed = 0;
  if (!limiter_.audit_refusal(ip, now, &suppressed)) return;
  std::string n = std::to_string(suppressed);
  audit::event("conn_refused", {{"ip", addr}, {"reason", reason}, {"suppressed", n, true}});
}

void Server::stream_closed(C2sStream* stream) {
  auto it = streams_.find(stream);
  if (it == streams_.end()) return;
  graveyard_.push_back(std::move(it->second));
  streams_.erase(it);
  if (shutting_down_ && streams_.empty() && sessions_.empty()) loop_->stop();
}

ClientSession* Server::create_session(C2sStream* stream, Jid jid) {
  auto session = std::make_unique<ClientSession>(this, stream, std::move(jid));
  ClientSession* raw = session.get();
  sessions_.emplace(raw, std::move(session));
  return raw;
}

void Server::session_ended(ClientSession* session) {
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return;
  session_graveyard_.push_back(std::move(it->second));
  sessions_.erase(it);
  if (shutting_down_ && streams_.empty() && sessions_.empty()) loop_->stop();
}

void Server::register_resumable(const std::string& id, ClientSession* session) {
  resumable_[id] = session;
}

void Server::unregister_resumable(const std::string& id) {
  auto it = resumable_.find(id);
  if (it != resumable_.end()) resumable_.erase(it);
}

ClientSession* Server::find_resumable(std::string_view id) {
  auto it = resumable_.find(id);
  return it == resumable_.end() ? nullptr : it->second;
}

size_t Server::detached_count() const {
  size_t n = 0;
  for (const auto& [raw, owned] : sessions_)
    if (raw->stream() == nullptr) ++n;
  return n;
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
  // Sessions waiting for a XEP-0198 resumption end too: what their
  // clients never acknowledged goes to offline storage.
  std::vector<ClientSession*> detached;
  for (auto& [raw, owned] : sessions_)
    if (raw->stream() == nullptr) detached.push_back(raw);
  for (ClientSession* s : detached)
    s->end();
  if (streams_.empty() && sessions_.empty()) {
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
  config_.ping_interval = next.ping_interval;
  config_.ping_timeout = next.ping_timeout;
  config_.admins = next.admins;
  config_.expose_version = next.expose_version;
  config_.roster = next.roster;
  config_.offline = next.offline;
  config_.vcard = next.vcard;
  config_.private_storage = next.private_storage;
  config_.account = next.account;
  config_.contact = next.contact;
  config_.smacks = next.smacks;
  config_.archive = next.archive;
  config_.csi = next.csi;
  config_.pep = next.pep;
  config_.spam = next.spam;
  config_.registration = next.registration;
  config_.min_password_length = next.min_password_length;
  // New connections get the new limits; open ones keep theirs.
  config_.limits = next.limits;
  configure_limits();
  if (host_) host_->reload(config_);
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
