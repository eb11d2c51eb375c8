// A bare wolfSSL TLS relay: the floor under any TLS server's cost per
// message (issue 7). `hearth-bench echo-server` runs it; the `echo` scenario
// drives it with the same pairs, window and message size as `messages`.
//
// Protocol, line-based, over TLS on one port: a connection first sends
// "hello N\n" and is answered "ok\n"; from then on every line it sends goes
// to the connection that said "hello N^1" (2k <-> 2k+1), as a router would
// deliver a chat message to its recipient. Lines to a peer that is not
// connected are dropped.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "client.h"
#include "loop.h"
#include "tls_stream.h"

namespace hearth::bench {

struct EchoServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string cert;  // PEM chain
  std::string key;   // PEM private key
};

// Serves until killed (SIGTERM/SIGINT). Returns an exit status on failure.
int run_echo_server(const EchoServerOptions& o);

// A client of the echo server: TCP, TLS (the same client context and key
// share as Client), "hello N", then lines.
class EchoClient : public StreamHandler {
 public:
  enum class State { kIdle, kConnecting, kHandshake, kHello, kReady, kFailed, kClosed };

  EchoClient(Loop* loop, const ServerConfig* cfg, int id)
      : StreamHandler(loop), cfg_(cfg), id_(id) {}
  ~EchoClient() override { shut(); }
  EchoClient(const EchoClient&) = delete;
  EchoClient& operator=(const EchoClient&) = delete;

  void start();
  void send(std::string_view line);
  void close();
  bool ready() const { return state_ == State::kReady; }
  bool done() const {
    return state_ == State::kReady || state_ == State::kFailed || state_ == State::kClosed;
  }
  const std::string& error() const { return error_; }
  int id() const { return id_; }

  // Every line (without its newline) once ready.
  std::function<void(EchoClient&, std::string_view)> on_line;

 private:
  void on_connected() override;
  void on_secure() override;
  void on_readable() override;
  void on_error(std::string why) override;
  void shut();

  const ServerConfig* cfg_;
  int id_;
  State state_ = State::kIdle;
  std::string in_;
  std::string error_;
};

// The size of one relayed line, newline included: about a routed chat
// stanza with its from/to/id.
constexpr int kEchoLineBytes = 200;

}  // namespace hearth::bench
