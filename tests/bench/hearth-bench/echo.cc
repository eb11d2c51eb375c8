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
class Conn : public Handler {
 public:
  Conn(EchoServer* srv, int fd, WOLFSSL* ssl) : srv_(srv), fd_(fd), ssl_(ssl) {}
  ~Conn() override { shut(); }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  void on_event(uint32_t events) override;
  // Queues bytes for this connection; flush() writes them.
  void queue(std::string_view bytes) { out_.append(bytes); }
  void flush();
  bool open() const { return fd_ >= 0; }
  int fd() const { return fd_; }

 private:
  void handshake();
  void read_some();
  void update_interest();
  void shut();

  EchoServer* srv_;
  int fd_;
  WOLFSSL* ssl_;
  bool handshaking_ = true;
  bool want_write_ = false;
  uint32_t interest_ = EPOLLIN;
  int id_ = -1;
  std::string in_;
  std::string out_;
  int pending_write_ = 0;  // a write to repeat after WANT_WRITE
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
      loop_.add(fd, EPOLLIN, conns_.back().get());
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

void Conn::on_event(uint32_t events) {
  if (fd_ < 0) return;
  if (handshaking_) {
    handshake();
    return;
  }
  if (events & EPOLLOUT) flush();
  if (fd_ >= 0 && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) read_some();
}

void Conn::handshake() {
  int r = wolfSSL_accept(ssl_);
  if (r == WOLFSSL_SUCCESS) {
    handshaking_ = false;
    want_write_ = false;
    update_interest();
    return;
  }
  int err = wolfSSL_get_error(ssl_, r);
  if (err == WOLFSSL_ERROR_WANT_READ) {
    want_write_ = false;
  } else if (err == WOLFSSL_ERROR_WANT_WRITE) {
    want_write_ = true;
  } else {
    shut();
    return;
  }
  update_interest();
}

// Reads all that is there, then hands every complete line to the peer in
// one write: what a server that batches per read does.
void Conn::read_some() {
  char buf[16384];
  Conn* peer = nullptr;
  bool closed = false;
  while (true) {
    int n = wolfSSL_read(ssl_, buf, sizeof buf);
    if (n <= 0) {
      int err = wolfSSL_get_error(ssl_, n);
      if (err == WOLFSSL_ERROR_WANT_READ) break;
      if (err == WOLFSSL_ERROR_WANT_WRITE) {
        want_write_ = true;
        break;
      }
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

void Conn::flush() {
  while (fd_ >= 0 && !out_.empty()) {
    int len = pending_write_ > 0 ? pending_write_
                                 : static_cast<int>(std::min<size_t>(out_.size(), 16384));
    int n = wolfSSL_write(ssl_, out_.data(), len);
    if (n > 0) {
      out_.erase(0, static_cast<size_t>(n));
      pending_write_ = 0;
      want_write_ = false;
      continue;
    }
    int err = wolfSSL_get_error(ssl_, n);
    if (err == WOLFSSL_ERROR_WANT_WRITE || err == WOLFSSL_ERROR_WANT_READ) {
      pending_write_ = len;
      want_write_ = err == WOLFSSL_ERROR_WANT_WRITE;
      break;
    }
    shut();
    return;
  }
  update_interest();
}

void Conn::update_interest() {
  if (fd_ < 0) return;
  uint32_t want = EPOLLIN;
  if (!out_.empty() || want_write_) want |= EPOLLOUT;
  if (want != interest_) {
    interest_ = want;
    srv_->loop().modify(fd_, want, this);
  }
}

void Conn::shut() {
  if (fd_ < 0) return;
  srv_->leave(id_, this);
  srv_->loop().remove(fd_);
  wolfSSL_free(ssl_);
  ssl_ = nullptr;
  ::close(fd_);
  fd_ = -1;
  in_.clear();
  out_.clear();
}

}  // namespace

void EchoClient::start() {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string port = std::to_string(cfg_->port);
  if (getaddrinfo(cfg_->host.c_str(), port.c_str(), &hints, &res) != 0 || res == nullptr) {
    fail("bad --host (give a numeric address)");
    return;
  }
  fd_ = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    freeaddrinfo(res);
    fail(std::string("socket: ") + strerror(errno));
    return;
  }
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int r = connect(fd_, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  if (r != 0 && errno != EINPROGRESS) {
    fail(std::string("connect: ") + strerror(errno));
    return;
  }
  state_ = State::kConnecting;
  interest_ = EPOLLOUT;
  loop_->add(fd_, interest_, this);
}

void EchoClient::on_event(uint32_t events) {
  if (fd_ < 0) return;
  if (state_ == State::kConnecting) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0 || (events & EPOLLERR)) {
      fail(std::string("connect: ") + strerror(err != 0 ? err : ECONNREFUSED));
      return;
    }
    ssl_ = tls_new_client(fd_, "");
    if (ssl_ == nullptr) return fail("wolfSSL_new");
    state_ = State::kHandshake;
    handshake();
    return;
  }
  if (state_ == State::kHandshake) {
    handshake();
    return;
  }
  if (events & EPOLLOUT) flush();
  if (fd_ >= 0 && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) read_some();
}

void EchoClient::handshake() {
  int r = wolfSSL_connect(ssl_);
  if (r == WOLFSSL_SUCCESS) {
    static bool told = false;
    if (!told) {
      told = true;
      fprintf(stderr, "hearth-bench: echo TLS: %s\n", tls_describe(ssl_).c_str());
    }
    want_write_ = false;
    state_ = State::kHello;
    out_.append("hello " + std::to_string(id_) + "\n");
    flush();
    return;
  }
  int err = wolfSSL_get_error(ssl_, r);
  if (err == WOLFSSL_ERROR_WANT_READ) {
    want_write_ = false;
  } else if (err == WOLFSSL_ERROR_WANT_WRITE) {
    want_write_ = true;
  } else {
    char buf[WOLFSSL_MAX_ERROR_SZ];
    return fail(std::string("TLS handshake: ") + wolfSSL_ERR_error_string(err, buf));
  }
  update_interest();
}

void EchoClient::send(std::string_view line) {
  if (fd_ < 0) return;
  out_.append(line);
  if (state_ == State::kHello || state_ == State::kReady) flush();
}

void EchoClient::flush() {
  while (fd_ >= 0 && !out_.empty()) {
    int len = pending_write_ > 0 ? pending_write_
                                 : static_cast<int>(std::min<size_t>(out_.size(), 16384));
    int n = wolfSSL_write(ssl_, out_.data(), len);
    if (n > 0) {
      out_.erase(0, static_cast<size_t>(n));
      pending_write_ = 0;
      want_write_ = false;
      continue;
    }
    int err = wolfSSL_get_error(ssl_, n);
    if (err == WOLFSSL_ERROR_WANT_WRITE || err == WOLFSSL_ERROR_WANT_READ) {
      pending_write_ = len;
      want_write_ = err == WOLFSSL_ERROR_WANT_WRITE;
      break;
    }
    return fail("TLS write failed");
  }
  update_interest();
}

void EchoClient::read_some() {
  char buf[16384];
  while (fd_ >= 0) {
    int n = wolfSSL_read(ssl_, buf, sizeof buf);
    if (n <= 0) {
      int err = wolfSSL_get_error(ssl_, n);
      if (err == WOLFSSL_ERROR_WANT_READ) break;
      if (err == WOLFSSL_ERROR_WANT_WRITE) {
        want_write_ = true;
        break;
      }
      return fail("the echo server closed the connection");
    }
    in_.append(buf, static_cast<size_t>(n));
    size_t pos = 0;
    while (fd_ >= 0) {
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
    if (fd_ < 0) return;
    in_.erase(0, pos);
  }
  update_interest();
}

void EchoClient::update_interest() {
  if (fd_ < 0) return;
  uint32_t want = EPOLLIN;
  if (state_ == State::kConnecting) want = EPOLLOUT;
  if (!out_.empty() || want_write_) want |= EPOLLOUT;
  if (want != interest_) {
    interest_ = want;
    loop_->modify(fd_, want, this);
  }
}

void EchoClient::fail(std::string why) {
  error_ = std::move(why);
  state_ = State::kFailed;
  shut();
}

void EchoClient::close() {
  if (fd_ < 0) return;
  if (state_ != State::kFailed) state_ = State::kClosed;
  shut();
}

void EchoClient::shut() {
  if (ssl_ != nullptr) {
    wolfSSL_free(ssl_);
    ssl_ = nullptr;
  }
  if (fd_ >= 0) {
    loop_->remove(fd_);
    ::close(fd_);
    fd_ = -1;
  }
  in_.clear();
  out_.clear();
}

int run_echo_server(const EchoServerOptions& o) {
  EchoServer server;
  return server.run(o);
}

}  // namespace hearth::bench
