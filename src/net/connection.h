// A client connection: a non-blocking socket, optional TLS (direct or after
// STARTTLS), and an output buffer flushed at the end of the loop turn.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/loop.h"
#include "net/tls.h"

namespace hearth::net {

class ConnectionHandler {
 public:
  virtual ~ConnectionHandler() = default;
  // Plaintext from the peer (decrypted if TLS is active).
  virtual void on_data(std::string_view data) = 0;
  // The TLS handshake completed.
  virtual void on_tls_ready() = 0;
  // The connection is gone (peer closed, error, or our close finished).
  // Called once; the handler may then be freed at the end of the turn.
  virtual void on_closed(std::string_view reason) = 0;
};

class Connection : public core::IoHandler {
 public:
  // Takes ownership of `fd` (non-blocking). `tls` may be null when TLS is
  // not possible; `direct_tls` starts TLS with the first byte (XEP-0368).
  Connection(core::Loop* loop, int fd, std::string peer, const TlsContext* tls, bool direct_tls);
  ~Connection() override;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  Status start(ConnectionHandler* handler);

  // Queue plaintext for the peer (encrypted if TLS is active).
  void send(std::string_view data);
  // STARTTLS (RFC 6120 §5.4.3.3): from now on, input and output are TLS.
  // Output queued before this call still goes out in the clear.
  void start_tls();
  // Flush what is queued, then close. Further input is ignored.
  void close();

  bool is_tls() const { return tls_ != nullptr; }
  bool tls_ready() const { return tls_ && tls_->state() == TlsSession::State::kOpen; }
  TlsSession* tls() { return tls_.get(); }
  bool closed() const { return state_ == State::kClosed; }
  const std::string& peer() const { return peer_; }
  size_t buffered() const { return out_.size() - out_pos_; }

  void on_io(uint32_t events) override;
  // Writes queued output.
  void flush();
  // Flushes every connection with queued output; run at the end of each
  // loop turn.
  static void flush_all();

  // Output buffered beyond this closes the connection (slow or stuck peer).
  static constexpr size_t kMaxBuffered = 4u << 20;

 private:
  enum class State { kOpen, kClosing, kClosed };
  void handle_read();
  void pump_tls();
  void finish(std::string_view reason);
  void update_events();
  void schedule_flush();
  // Marks the connection for closing at the end of the turn (see send()).
  void doom(const char* reason);

  core::Loop* loop_;
  int fd_;
  std::string peer_;
  const TlsContext* tls_ctx_;
  std::unique_ptr<TlsSession> tls_;
  ConnectionHandler* handler_ = nullptr;
  std::string out_;
  size_t out_pos_ = 0;
  State state_ = State::kOpen;
  bool want_write_ = false;
  bool flush_scheduled_ = false;
  bool handshake_reported_ = false;
  const char* doomed_ = nullptr;  // why it must close at the end of the turn
  core::Loop::TimerId close_timer_ = 0;
};

}  // namespace hearth::net
