// The reactor's server object: configuration, listeners, TLS context,
// authenticator, router and the live streams, driven by one Loop.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/config.h"
#include "core/loop.h"
#include "modules/host.h"
#include "net/limits.h"
#include "net/listener.h"
#include "net/tls.h"
#include "storage/env.h"
#include "xmpp/auth.h"
#include "xmpp/c2s.h"
#include "xmpp/router.h"

namespace hearth::xmpp {

class Server : public StreamHost {
 public:
  // The loop is the process's; the server adds its listeners, streams,
  // signal handling and end-of-turn work to it.
  Server(config::Config config, core::Loop* loop);
  ~Server() override;

  // What the reactor process hands over before start().
  void set_tls(std::unique_ptr<net::TlsContext> tls) { tls_ = std::move(tls); }
  void set_authenticator(Authenticator* auth) { auth_ = auth; }
  // Opens data.mdb (every table of every compiled-in module) and creates the
  // enabled modules. Before start(), and before the sandbox closes the
  // file system. `accounts` (may be null in tests) reaches the auth worker.
  Status open_modules(modules::AccountBackend* accounts);
  modules::Host* host() { return host_.get(); }
  void add_listener(std::unique_ptr<net::Listener> listener, bool direct_tls);
  // A reload (SIGHUP at the monitor): applies what can change at run time.
  void apply_config(const config::Config& next);

  // Starts accepting and watching SIGTERM/SIGINT.
  Status start();
  // Serves until SIGTERM/SIGINT; returns the process exit code.
  int run();

  // StreamHost
  core::Loop& loop() override { return *loop_; }
  Router& router() override { return router_; }
  modules::Host& modules() override { return *host_; }
  Authenticator& authenticator() override { return *auth_; }
  const std::string& domain() const override { return config_.domain; }
  const net::TlsContext* tls_context() const override { return tls_.get(); }
  size_t max_stanza_size() const override { return config_.max_stanza_size; }
  uint32_t pre_auth_timeout_ms() const override { return config_.pre_auth_timeout * 1000u; }
  uint32_t ping_interval_ms() const override { return config_.ping_interval * 1000u; }
  uint32_t ping_timeout_ms() const override { return config_.ping_timeout * 1000u; }
  void stream_closed(C2sStream* stream) override;
  uint32_t preauth_idle_timeout_ms() const override {
    return config_.limits.preauth_idle_timeout * 1000u;
  }
  uint32_t resume_timeout_ms() const override { return config_.smacks.resume_timeout * 1000u; }
  size_t sm_max_queue() const override { return config_.smacks.max_queue; }
  ClientSession* create_session(C2sStream* stream, Jid jid) override;
  void session_ended(ClientSession* session) override;
  void register_resumable(const std::string& id, ClientSession* session) override;
  void unregister_resumable(const std::string& id) override;
  ClientSession* find_resumable(std::string_view id) override;

  size_t session_count() const { return sessions_.size(); }
  const net::ConnectionLimiter& limiter() const { return limiter_; }
  size_t detached_count() const;

 private:
  void accept(int fd, std::string peer, bool direct_tls);
  // [limits]: the per-IP table's rules from config_.
  void configure_limits();
  void refuse(int fd, const net::IpAddress& ip, net::ConnectionLimiter::Verdict why);
  void on_signal(int sig);
  void shutdown();

  config::Config config_;
  core::Loop* loop_;
  // Before the streams: their connections give their slots back to it.
  net::ConnectionLimiter limiter_;
  std::unique_ptr<net::TlsContext> tls_;
  Authenticator* auth_ = nullptr;
  Router router_;
  std::unique_ptr<storage::Env> db_;
  std::unique_ptr<modules::Host> host_;
  std::vector<std::pair<std::unique_ptr<net::Listener>, bool>> listeners_;
  std::unordered_map<C2sStream*, std::unique_ptr<C2sStream>> streams_;
  std::vector<std::unique_ptr<C2sStream>> graveyard_;
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  std::unordered_map<ClientSession*, std::unique_ptr<ClientSession>> sessions_;
  std::unordered_map<std::string, ClientSession*, Hash, std::equal_to<>> resumable_;
  std::vector<std::unique_ptr<ClientSession>> session_graveyard_;
  bool shutting_down_ = false;
  uint64_t last_full_warning_ms_ = 0;
};

}  // namespace hearth::xmpp
