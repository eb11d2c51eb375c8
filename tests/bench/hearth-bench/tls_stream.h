// The transport under every hearth-bench connection: a non-blocking TCP
// socket registered with the Loop, with a wolfSSL session over it once TLS
// starts. The XMPP Client, the echo client and the echo server's
// connections each drive one; what differs between them (what a handshake
// leads to, what the bytes mean) stays with them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "loop.h"

struct WOLFSSL;
struct WOLFSSL_CTX;

namespace hearth::bench {

// Global TLS client context; call once before any Client starts.
bool tls_init();
WOLFSSL_CTX* tls_client_ctx();
// A client session on `fd` from that context: SNI `sni` (if any) and an
// X25519 key share. Null on failure.
WOLFSSL* tls_new_client(int fd, const std::string& sni);
// "TLSv1.3 TLS13-AES128-GCM-SHA256 X25519": what a handshake agreed.
std::string tls_describe(WOLFSSL* ssl);
// Prints "hearth-bench: <what>: <tls_describe>" unless *told, then sets it:
// what the first handshake of a kind agreed.
void tls_tell_once(WOLFSSL* ssl, const char* what, bool* told);

class TlsStream {
 public:
  enum class Handshake { kDone, kPending, kFailed };
  // What read() returns when nothing more can be read for now.
  static constexpr int kAgain = -1;

  // `handler` gets the socket's events from `loop`.
  TlsStream(Loop* loop, Handler* handler) : loop_(loop), handler_(handler) {}
  ~TlsStream() { close(); }
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  // Starts a non-blocking connection to host:port (numeric) and waits for
  // it to become writable. False with *why on failure (the socket, if any,
  // stays for close()).
  bool connect(const std::string& host, int port, std::string* why);
  // The first event while connecting: false with *why if the connection
  // failed.
  bool connected(uint32_t events, std::string* why);
  // Takes an accepted socket and its server session; waits for input.
  void adopt(int fd, WOLFSSL* ssl);
  // Puts a client session from tls_new_client() over the socket.
  bool start_tls(const std::string& sni);
  // One step of the TLS handshake. kFailed with *why.
  Handshake handshake(std::string* why);
  // From connect() until connected() saw it succeed.
  bool connecting() const { return connecting_; }
  // From adopt() or start_tls() until handshake() is done.
  bool handshaking() const { return handshaking_; }

  void queue(std::string_view bytes) { out_.append(bytes); }
  // Writes what is queued as far as the socket takes it. False with *why
  // when the connection failed.
  bool flush(std::string* why);
  // Bytes read into buf (> 0), kAgain, or 0: the stream is over (end,
  // reset, close_notify or a TLS error).
  int read(char* buf, int size);
  // Waits for output too while anything is left to write.
  void update_interest();
  // Frees the session and closes the socket; drops what is queued.
  void close();

  bool open() const { return fd_ >= 0; }
  WOLFSSL* ssl() const { return ssl_; }

 private:
  Loop* loop_;
  Handler* handler_;
  int fd_ = -1;
  WOLFSSL* ssl_ = nullptr;
  bool server_ = false;
  bool connecting_ = false;
  bool handshaking_ = false;
  bool want_write_ = false;  // TLS wants the socket writable
  uint32_t interest_ = 0;
  int pending_write_ = 0;  // length of a TLS write to repeat after WANT_WRITE
  std::string out_;
};

// A Loop handler over one TlsStream: it drives the connect, the TLS
// handshake and the writes, and tells the subclass what came of them.
// While the stream connects or shakes hands, events go to those steps.
class StreamHandler : public Handler {
 public:
  explicit StreamHandler(Loop* loop) : stream_(loop, this) {}

  void on_event(uint32_t events) final;
  // Writes what is queued; on_error() if the connection failed.
  void flush();

 protected:
  // The TCP connection is up.
  virtual void on_connected() {}
  // The TLS handshake is done.
  virtual void on_secure() = 0;
  // The socket is readable (or hung up).
  virtual void on_readable() = 0;
  virtual void on_error(std::string why) = 0;

  // One step of the TLS handshake: on_secure() or on_error() when it ends.
  void handshake();

  TlsStream stream_;
};

}  // namespace hearth::bench
