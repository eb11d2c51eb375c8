// Shared by the TLS unit tests: a wolfSSL client with memory I/O (the
// mirror image of TlsSession), a temporary directory, and file helpers.
#pragma once

#include <ftw.h>
#include <stdlib.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

namespace hearth::net::testing {

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline void write_file(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << data;
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/hearth-tls-XXXXXX";
    char* p = mkdtemp(tmpl);
    if (p != nullptr) path_ = p;
  }
  ~TempDir() {
    if (path_.empty()) return;
    // Depth-first removal, no shell.
    nftw(
        path_.c_str(),
        [](const char* p, const struct stat*, int, struct FTW*) { return ::remove(p); }, 16,
        FTW_DEPTH | FTW_PHYS);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class Client {
 public:
  explicit Client(WOLFSSL_METHOD* method) {
    ctx_ = wolfSSL_CTX_new(method);
    wolfSSL_CTX_set_verify(ctx_, WOLFSSL_VERIFY_NONE, nullptr);
  }
  ~Client() {
    if (ssl_ != nullptr) wolfSSL_free(ssl_);
    if (ctx_ != nullptr) wolfSSL_CTX_free(ctx_);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  WOLFSSL_CTX* ctx() { return ctx_; }
  // Call after configuring ctx(); creates the session.
  WOLFSSL* ssl() {
    if (ssl_ == nullptr) {
      ssl_ = wolfSSL_new(ctx_);
      wolfSSL_SSLSetIORecv(ssl_, &Client::recv_cb);
      wolfSSL_SSLSetIOSend(ssl_, &Client::send_cb);
      wolfSSL_SetIOReadCtx(ssl_, this);
      wolfSSL_SetIOWriteCtx(ssl_, this);
    }
    return ssl_;
  }
  std::string in;
  size_t in_pos = 0;
  std::string out;
  bool connected = false;
  int last_error = 0;  // the error that ended the handshake

  // One handshake step; true when done, false while pending or failed.
  bool step() {
    if (connected) return true;
    if (last_error != 0) return false;
    int r = wolfSSL_connect(ssl());
    if (r == WOLFSSL_SUCCESS) {
      connected = true;
      return true;
    }
    int e = wolfSSL_get_error(ssl(), r);
    if (e != WOLFSSL_ERROR_WANT_READ && e != WOLFSSL_ERROR_WANT_WRITE) last_error = e;
    return false;
  }
  // Reads all available plaintext; returns the wolfSSL error code that ended
  // the loop (WANT_READ when simply out of data).
  int read_all(std::string* plain) {
    char buf[4096];
    for (;;) {
      int n = wolfSSL_read(ssl(), buf, sizeof buf);
      if (n > 0) {
        plain->append(buf, static_cast<size_t>(n));
        continue;
      }
      return wolfSSL_get_error(ssl(), n);
    }
  }
  int last_alert_received() {
    WOLFSSL_ALERT_HISTORY h;
    std::memset(&h, 0, sizeof h);
    wolfSSL_get_alert_history(ssl(), &h);
    return h.last_rx.code;
  }

 private:
  static int recv_cb(WOLFSSL*, char* buf, int sz, void* ctx) {
    auto* c = static_cast<Client*>(ctx);
    size_t avail = c->in.size() - c->in_pos;
    if (avail == 0) return WOLFSSL_CBIO_ERR_WANT_READ;
    size_t n = std::min(avail, static_cast<size_t>(sz));
    std::memcpy(buf, c->in.data() + c->in_pos, n);
    c->in_pos += n;
    if (c->in_pos == c->in.size()) {
      c->in.clear();
      c->in_pos = 0;
    }
    return static_cast<int>(n);
  }
  static int send_cb(WOLFSSL*, char* buf, int sz, void* ctx) {
    static_cast<Client*>(ctx)->out.append(buf, static_cast<size_t>(sz));
    return sz;
  }
  WOLFSSL_CTX* ctx_ = nullptr;
  WOLFSSL* ssl_ = nullptr;
};

}  // namespace hearth::net::testing
