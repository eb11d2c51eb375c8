#include "tls_stream.h"

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
#include <cstdio>
#include <cstring>

namespace hearth::bench {
namespace {

WOLFSSL_CTX* g_ctx = nullptr;

// The most one TLS write takes: a record.
constexpr size_t kMaxWrite = 16384;

}  // namespace

bool tls_init() {
  if (wolfSSL_Init() != WOLFSSL_SUCCESS) return false;
  g_ctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
  if (g_ctx == nullptr) return false;
  wolfSSL_CTX_SetMinVersion(g_ctx, WOLFSSL_TLSV1_2);
  // Benchmarks run against a self-signed certificate on loopback.
  wolfSSL_CTX_set_verify(g_ctx, WOLFSSL_VERIFY_NONE, nullptr);
  // X25519 first, then P-256, as real clients offer them (and the TLS 1.3
  // key share goes with the first). A P-256 key share from every client
  // would make Debian's wolfSSL on the server build an FP_ECC table (about
  // 800 KB) per point used twice, so the server's memory would be the
  // bench's artefact, not what real clients cost.
  int groups[] = {WOLFSSL_ECC_X25519, WOLFSSL_ECC_SECP256R1};
  if (wolfSSL_CTX_set_groups(g_ctx, groups, 2) != WOLFSSL_SUCCESS) return false;
  return true;
}

WOLFSSL_CTX* tls_client_ctx() {
  return g_ctx;
}

WOLFSSL* tls_new_client(int fd, const std::string& sni) {
  WOLFSSL* ssl = wolfSSL_new(g_ctx);
  if (ssl == nullptr) return nullptr;
  // The TLS 1.3 key share: X25519 alone, so a server that prefers it
  // answers without a HelloRetryRequest.
  if (wolfSSL_UseKeyShare(ssl, WOLFSSL_ECC_X25519) != WOLFSSL_SUCCESS) {
    wolfSSL_free(ssl);
    return nullptr;
  }
  if (!sni.empty()) {
    wolfSSL_UseSNI(ssl, WOLFSSL_SNI_HOST_NAME, sni.data(), static_cast<unsigned short>(sni.size()));
  }
  wolfSSL_set_fd(ssl, fd);
  return ssl;
}

std::string tls_describe(WOLFSSL* ssl) {
  const char* v = wolfSSL_get_version(ssl);
  const char* c = wolfSSL_get_cipher_name(ssl);
  const char* g = wolfSSL_get_curve_name(ssl);
  return std::string(v ? v : "?") + " " + (c ? c : "?") + " " + (g ? g : "?");
}

void tls_tell_once(WOLFSSL* ssl, const char* what, bool* told) {
  if (*told) return;
  *told = true;
  fprintf(stderr, "hearth-bench: %s: %s\n", what, tls_describe(ssl).c_str());
}

bool TlsStream::connect(const std::string& host, int port, std::string* why) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string service = std::to_string(port);
  if (getaddrinfo(host.c_str(), service.c_str(), &hints, &res) != 0 || res == nullptr) {
    *why = "bad --host (give a numeric address)";
    return false;
  }
  fd_ = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    freeaddrinfo(res);
    *why = std::string("socket: ") + strerror(errno);
    return false;
  }
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int r = ::connect(fd_, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  if (r != 0 && errno != EINPROGRESS) {
    *why = std::string("connect: ") + strerror(errno);
    return false;
  }
  connecting_ = true;
  interest_ = EPOLLOUT;
  loop_->add(fd_, interest_, handler_);
  return true;
}

bool TlsStream::connected(uint32_t events, std::string* why) {
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0 || (events & EPOLLERR)) {
    *why = std::string("connect: ") + strerror(err != 0 ? err : ECONNREFUSED);
    return false;
  }
  connecting_ = false;
  return true;
}

void TlsStream::adopt(int fd, WOLFSSL* ssl) {
  fd_ = fd;
  ssl_ = ssl;
  server_ = true;
  handshaking_ = true;
  interest_ = EPOLLIN;
  loop_->add(fd_, interest_, handler_);
}

bool TlsStream::start_tls(const std::string& sni) {
  ssl_ = tls_new_client(fd_, sni);
  handshaking_ = ssl_ != nullptr;
  return handshaking_;
}

TlsStream::Handshake TlsStream::handshake(std::string* why) {
  int r = server_ ? wolfSSL_accept(ssl_) : wolfSSL_connect(ssl_);
  if (r == WOLFSSL_SUCCESS) {
    handshaking_ = false;
    want_write_ = false;
    return Handshake::kDone;
  }
  int err = wolfSSL_get_error(ssl_, r);
  if (err == WOLFSSL_ERROR_WANT_READ) {
    want_write_ = false;
  } else if (err == WOLFSSL_ERROR_WANT_WRITE) {
    want_write_ = true;
  } else {
    char buf[WOLFSSL_MAX_ERROR_SZ];
    *why = std::string("TLS handshake: ") + wolfSSL_ERR_error_string(err, buf);
    return Handshake::kFailed;
  }
  update_interest();
  return Handshake::kPending;
}

bool TlsStream::flush(std::string* why) {
  while (fd_ >= 0 && !out_.empty()) {
    if (ssl_ != nullptr) {
      int len =
          pending_write_ > 0 ? pending_write_ : static_cast<int>(std::min(out_.size(), kMaxWrite));
      int n = wolfSSL_write(ssl_, out_.data(), len);
      if (n > 0) {
        out_.erase(0, static_cast<size_t>(n));
        pending_write_ = 0;
        want_write_ = false;
        continue;
      }
      int err = wolfSSL_get_error(ssl_, n);
      if (err == WOLFSSL_ERROR_WANT_WRITE || err == WOLFSSL_ERROR_WANT_READ) {
        // The same bytes again next time, as TLS requires.
        pending_write_ = len;
        want_write_ = err == WOLFSSL_ERROR_WANT_WRITE;
        break;
      }
      *why = "TLS write failed";
      return false;
    }
    ssize_t n = ::send(fd_, out_.data(), out_.size(), MSG_NOSIGNAL);
    if (n > 0) {
      out_.erase(0, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
    *why = std::string("send: ") + strerror(errno);
    return false;
  }
  update_interest();
  return true;
}

int TlsStream::read(char* buf, int size) {
  if (ssl_ != nullptr) {
    int n = wolfSSL_read(ssl_, buf, size);
    if (n > 0) return n;
    int err = wolfSSL_get_error(ssl_, n);
    if (err == WOLFSSL_ERROR_WANT_READ) return kAgain;
    if (err == WOLFSSL_ERROR_WANT_WRITE) {
      want_write_ = true;
      return kAgain;
    }
    return 0;
  }
  ssize_t r = recv(fd_, buf, static_cast<size_t>(size), 0);
  if (r < 0 && (errno == EAGAIN || errno == EINTR)) return kAgain;
  return r < 0 ? 0 : static_cast<int>(r);
}

void TlsStream::update_interest() {
  if (fd_ < 0) return;
  uint32_t want = connecting_ ? EPOLLOUT : EPOLLIN;
  if (!out_.empty() || want_write_) want |= EPOLLOUT;
  if (want != interest_) {
    interest_ = want;
    loop_->modify(fd_, want, handler_);
  }
}

void TlsStream::close() {
  if (ssl_ != nullptr) {
    wolfSSL_free(ssl_);
    ssl_ = nullptr;
  }
  if (fd_ >= 0) {
    loop_->remove(fd_);
    ::close(fd_);
    fd_ = -1;
  }
  out_.clear();
}

void StreamHandler::on_event(uint32_t events) {
  if (!stream_.open()) return;
  if (stream_.connecting()) {
    std::string why;
    if (!stream_.connected(events, &why)) return on_error(std::move(why));
    on_connected();
    return;
  }
  if (stream_.handshaking()) {
    handshake();
    return;
  }
  if (events & EPOLLOUT) flush();
  if (stream_.open() && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) on_readable();
}

void StreamHandler::flush() {
  std::string why;
  if (!stream_.flush(&why)) on_error(std::move(why));
}

void StreamHandler::handshake() {
  std::string why;
  switch (stream_.handshake(&why)) {
    case TlsStream::Handshake::kDone:
      on_secure();
      return;
    case TlsStream::Handshake::kPending:
      return;
    case TlsStream::Handshake::kFailed:
      on_error(std::move(why));
      return;
  }
}

}  // namespace hearth::bench
