#include "echo.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "loop.h"

namespace hearth::bench {
namespace {

// Hearth's server TLS settings (src/net/tls.cc), so the floor is measured
// with the same suites and groups.
constexpr char kCipherList[] =
    "TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:TLS13-CHACHA20-POLY1305-SHA256:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:"
    "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305";

volatile sig_atomic_t g_stop = 0;

void on_signal(int) {
  g_stop = 1;
}

class EchoServer;

// One accepted TLS connection.
class Conn : public StreamHandler {
 public:
  // Takes the socket and its session; waits for the handshake.
  Conn(EchoServer* srv, int fd, WOLFSSL* ssl);
  ~Conn() override { shut(); }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // Queues bytes for this connection; flush() writes them.
  void queue(std::string_view bytes) { stream_.queue(bytes); }
  bool open() const { return stream_.open(); }

 private:
  void on_secure() override { stream_.update_interest(); }
  void on_readable() override;
  void on_error(std::string) override { shut(); }
  void shut();

  EchoServer* srv_;
  int id_ = -1;
  std::string in_;
};

class EchoServer : public Handler {
 public:
  ~EchoServer() override {
    for (auto& c : conns_)
      c.reset();
    if (listen_fd_ >= 0) ::close(listen_fd_);
    if (ctx_ != nullptr) wolfSSL_CTX_free(ctx_);
  }

  int run(const EchoServerOptions& o) {
    if (!setup_tls(o) || !listen_on(o)) return 2;
    fprintf(stderr, "hearth-bench echo-server: listening on %s:%d\n", o.host.c_str(), o.port);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    while (!g_stop) {
      loop_.run_once(200);
      reap();
    }
    return 0;
  }

  void on_event(uint32_t) override {  // the listening socket
    while (true) {
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;  // EAGAIN, or out of descriptors: try again later
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      WOLFSSL* ssl = wolfSSL_new(ctx_);
      if (ssl == nullptr) {
        ::close(fd);
        continue;
      }
      wolfSSL_set_fd(ssl, fd);
      conns_.push_back(std::make_unique<Conn>(this, fd, ssl));
    }
  }

  Loop& loop() { return loop_; }
  Conn* peer_of(int id) {
    auto it = by_id_.find(id ^ 1);
    return it == by_id_.end() ? nullptr : it->second;
  }
  void enrol(int id, Conn* c) { by_id_[id] = c; }
  void leave(int id, Conn* c) {
    auto it = by_id_.find(id);
    if (it != by_id_.end() && it->second == c) by_id_.erase(it);
    dead_ = true;
  }

 private:
  bool setup_tls(const EchoServerOptions& o) {
    if (wolfSSL_Init() != WOLFSSL_SUCCESS) return false;
    ctx_ = wolfSSL_CTX_new(wolfSSLv23_server_method());
    if (ctx_ == nullptr) return false;
    int groups[] = {WOLFSSL_ECC_X25519, WOLFSSL_ECC_SECP256R1, WOLFSSL_ECC_SECP384R1};
    if (wolfSSL_CTX_SetMinVersion(ctx_, WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS ||
        wolfSSL_CTX_set_cipher_list(ctx_, kCipherList) != WOLFSSL_SUCCESS ||
        wolfSSL_CTX_set_groups(ctx_, groups, 3) != WOLFSSL_SUCCESS) {
      fprintf(stderr, "hearth-bench echo-server: TLS settings refused\n");
      return false;
    }
    wolfSSL_CTX_set_options(ctx_, WOLFSSL_OP_CIPHER_SERVER_PREFERENCE);
    wolfSSL_CTX_NoTicketTLSv12(ctx_);
    wolfSSL_CTX_no_ticket_TLSv13(ctx_);
    wolfSSL_CTX_set_session_cache_mode(ctx_, WOLFSSL_SESS_CACHE_OFF);
    wolfSSL_CTX_set_verify(ctx_, WOLFSSL_VERIFY_NONE, nullptr);
    if (wolfSSL_CTX_use_certificate_chain_file(ctx_, o.cert.c_str()) != WOLFSSL_SUCCESS) {
      fprintf(stderr, "hearth-bench echo-server: cannot load %s\n", o.cert.c_str());
      return false;
    }
    if (wolfSSL_CTX_use_PrivateKey_file(ctx_, o.key.c_str(), WOLFSSL_FILETYPE_PEM) !=
        WOLFSSL_SUCCESS) {
      fprintf(stderr, "hearth-bench echo-server: cannot load %s\n", o.key.c_str());
      return false;
    }
    return true;
  }

  bool listen_on(const EchoServerOptions& o) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
    addrinfo* res = nullptr;
    std::string port = std::to_string(o.port);
    if (getaddrinfo(o.host.c_str(), port.c_str(), &hints, &res) != 0 || res == nullptr) {
      fprintf(stderr, "hearth-bench echo-server: bad --host (give a numeric address)\n");
      return false;
    }
    listen_fd_ = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    bool ok = listen_fd_ >= 0 &&
              setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
              bind(listen_fd_, res->ai_addr, res->ai_addrlen) == 0 && listen(listen_fd_, 1024) == 0;
    freeaddrinfo(res);
    if (!ok) {
      fprintf(stderr, "hearth-bench echo-server: cannot listen on %s:%d: %s\n", o.host.c_str(),
              o.port, strerror(errno));
      return false;
    }
    loop_.add(listen_fd_, EPOLLIN, this);
    return true;
  }

  // Frees closed connections once no event of this turn can name them.
  void reap() {
    if (!dead_) return;
    dead_ = false;
    conns_.erase(std::remove_if(conns_.begin(), conns_.end(),
                                [](const std::unique_ptr<Conn>& c) { return !c->open(); }),
                 conns_.end());
  }

  Loop loop_;
  WOLFSSL_CTX* ctx_ = nullptr;
  int listen_fd_ = -1;
  std::vector<std::unique_ptr<Conn>> conns_;
  std::unordered_map<int, Conn*> by_id_;
  bool dead_ = false;
};

Conn::Conn(EchoServer* srv, int fd, WOLFSSL* ssl) : StreamHandler(&srv->loop()), srv_(srv) {
  stream_.adopt(fd, ssl);
}

// Reads all that is there, then hands every complete line to the peer in
// one write: what a server that batches per read does.
void Conn::on_readable() {
  char buf[16384];
  Conn* peer = nullptr;
  bool closed = false;
  while (true) {
    int n = stream_.read(buf, sizeof buf);
    if (n == TlsStream::kAgain) break;
    if (n == 0) {
      closed = true;
      break;
    }
    in_.append(buf, static_cast<size_t>(n));
  }
  size_t pos = 0;
  while (true) {
    size_t nl = in_.find('\n', pos);
    if (nl == std::string::npos) break;
    std::string_view line(in_.data() + pos, nl + 1 - pos);
    if (id_ < 0) {
      if (line.compare(0, 6, "hello ") == 0) {
        id_ = atoi(std::string(line.substr(6)).c_str());
        srv_->enrol(id_, this);
        queue("ok\n");
      }
    } else {
      if (peer == nullptr) peer = srv_->peer_of(id_);
      if (peer != nullptr) peer->queue(line);
    }
    pos = nl + 1;
  }
  in_.erase(0, pos);
  if (peer != nullptr) peer->flush();
  if (closed) {
    shut();
    return;
  }
  flush();
}

void Conn::shut() {
  if (!stream_.open()) return;
  srv_->leave(id_, this);
  stream_.close();
  in_.clear();
}

}  // namespace

void EchoClient::start() {
  std::string why;
  if (!stream_.connect(cfg_->host, cfg_->port, &why)) return on_error(std::move(why));
  state_ = State::kConnecting;
}

void EchoClient::on_connected() {
  if (!stream_.start_tls("")) return on_error("wolfSSL_new");
  state_ = State::kHandshake;
  handshake();
}

void EchoClient::on_secure() {
  static bool told = false;
  tls_tell_once(stream_.ssl(), "echo TLS", &told);
  state_ = State::kHello;
  stream_.queue("hello " + std::to_string(id_) + "\n");
  flush();
}

void EchoClient::send(std::string_view line) {
  if (!stream_.open()) return;
  stream_.queue(line);
  if (state_ == State::kHello || state_ == State::kReady) flush();
}

void EchoClient::close() {
  if (!stream_.open()) return;
  if (state_ != State::kFailed) state_ = State::kClosed;
  shut();
}

void EchoClient::on_readable() {
  char buf[16384];
  while (stream_.open()) {
    int n = stream_.read(buf, sizeof buf);
    if (n == TlsStream::kAgain) break;
    if (n == 0) return on_error("the echo server closed the connection");
    in_.append(buf, static_cast<size_t>(n));
    size_t pos = 0;
    while (stream_.open()) {
      size_t nl = in_.find('\n', pos);
      if (nl == std::string::npos) break;
      std::string_view line(in_.data() + pos, nl - pos);
      pos = nl + 1;
      if (state_ == State::kHello) {
        if (line == "ok") state_ = State::kReady;
      } else if (state_ == State::kReady && on_line) {
        on_line(*this, line);
      }
    }
    if (!stream_.open()) return;
    in_.erase(0, pos);
  }
  stream_.update_interest();
}

void EchoClient::on_error(std::string why) {
  error_ = std::move(why);
  state_ = State::kFailed;
  shut();
}

void EchoClient::shut() {
  stream_.close();
  in_.clear();
}

int run_echo_server(const EchoServerOptions& o) {
  EchoServer server;
  return server.run(o);
}

}  // namespace hearth::bench
