// One non-blocking XMPP c2s client connection driven by the Loop:
// TCP, STARTTLS or direct TLS (wolfSSL), SASL SCRAM, resource binding, and
// optionally initial presence settled by a ping round trip.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "loop.h"
#include "scram.h"
#include "tls_stream.h"
#include "xml.h"

namespace hearth::bench {

enum class TlsMode { kStartTls, kDirect };
enum class Mech { kAuto, kScramSha1, kScramSha256 };

struct ServerConfig {
  std::string host = "127.0.0.1";
  int port = 5222;
  std::string domain = "localhost";
  std::string user_pattern = "bench%d";
  std::string password;          // same for every user, or
  std::string password_pattern;  // with %d, per user
  TlsMode tls = TlsMode::kStartTls;
  Mech mech = Mech::kAuto;

  std::string user(int index) const;
  std::string password_for(int index) const;
  std::string bare_jid(int index) const { return user(index) + "@" + domain; }
};

class Client : public StreamHandler {
 public:
  enum class State {
    kIdle,
    kConnecting,
    kFeaturesPlain,
    kStartTls,
    kTlsHandshake,
    kFeaturesAuth,
    kSasl,
    kFeaturesBind,
    kBind,
    kSession,
    kSettle,
    kReady,
    kFailed,
    kClosed,
  };

  Client(Loop* loop, const ServerConfig* cfg, SaltCache* cache, int user_index,
         std::string resource, bool initial_presence);
  ~Client() override;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void start();
  void send(std::string_view xml);
  // Sends </stream:stream> and closes the connection.
  void close();

  State state() const { return state_; }
  bool ready() const { return state_ == State::kReady; }
  bool done() const {
    return state_ == State::kReady || state_ == State::kFailed || state_ == State::kClosed;
  }
  bool failed() const { return state_ == State::kFailed; }
  const std::string& error() const { return error_; }
  const std::string& jid() const { return jid_; }
  int user_index() const { return user_index_; }
  int64_t started_ns() const { return t_start_; }
  int64_t ready_ns() const { return t_ready_; }
  const std::string& mechanism() const { return mech_name_; }

  // Called for every top-level element once the client is ready.
  std::function<void(Client&, std::string_view)> on_stanza;
  int tag = 0;  // free for the scenario

 private:
  void on_connected() override;
  void on_secure() override;
  void on_readable() override;
  void on_error(std::string why) override { fail(std::move(why)); }
  bool handle(std::string_view el);  // false: stop reading (TLS starts)
  void open_stream();
  void after_bind();
  void become_ready();
  void fail(std::string why);
  void shut();

  const ServerConfig* cfg_;
  SaltCache* cache_;
  int user_index_;
  std::string resource_;
  bool initial_presence_;
  State state_ = State::kIdle;
  StreamSplitter splitter_;
  std::unique_ptr<ScramClient> scram_;
  bool session_required_ = false;
  std::string mech_name_;
  std::string jid_;
  std::string error_;
  int64_t t_start_ = 0;
  int64_t t_ready_ = 0;
};

}  // namespace hearth::bench
