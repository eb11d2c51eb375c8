// A client connection: a non-blocking socket, optional TLS (direct or after
// STARTTLS), and an output buffer flushed at the end of the loop turn.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/loop.h"
#include "net/limits.h"
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

// A receive budget (issue 6): `rate` bytes per second with bursts of
// `burst` bytes; rate 0 is no limit. It counts the bytes read from the
// socket, i.e. ciphertext under TLS (handshake included): that is what
// costs the server work, and it is counted before any of it is parsed.
// Each kind of stream picks its own numbers ([limits] c2s_rate/c2s_burst;
// s2s_rate/s2s_burst for server streams once they exist).
struct InputLimit {
  uint32_t rate = 0;
  uint32_t burst = 0;
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

  // ---- limits (issue 6); set before start() or at any time ----
  // Over the budget the connection stops reading from the socket (EPOLLIN
  // off) until a timer says enough tokens are back: nothing is dropped,
  // the peer's TCP window closes, the loop never blocks.
  void set_input_limit(InputLimit limit);
  // From start() (direct TLS) or start_tls() to the end of the handshake;
  // past it the connection closes. 0: no limit.
  void set_tls_handshake_timeout(uint32_t ms) { handshake_timeout_ms_ = ms; }
  // The connection's place in the per-IP table, given back when it closes.
  void set_slot(ConnectionSlot slot) { slot_ = std::move(slot); }
  // Loop::now_ms() of the last byte read from the peer / queued to it.
  uint64_t last_input_ms() const { return last_input_ms_; }
  uint64_t last_output_ms() const { return last_output_ms_; }
  // Reading is paused by the input limit.
  bool input_paused() const { return paused_; }

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
  size_t buffered() const { return out_.size() - out_pos_ + plain_.size(); }
  // Connections closed in this process so far (the reactor trims the heap
  // only after memory was given back).
  static uint64_t closed_total() { return closed_total_; }

  void on_io(uint32_t events) override;
  // Writes queued output.
  void flush();
  // Flushes every connection with queued output; run at the end of each
  // loop turn.
  static void flush_all();

  // Output buffered beyond this closes the connection (slow or stuck peer).
  // Kept at 4 MiB: a client catching up (offline messages, a MAM page, a
  // roster) gets its whole backlog queued in one turn, with stanzas of up
  // to max_stanza_size each; the connection caps bound the sum.
  static constexpr size_t kMaxBuffered = 4u << 20;

 private:
  static inline uint64_t closed_total_ = 0;
  enum class State { kOpen, kClosing, kClosed };
  void handle_read();
  void pump_tls();
  // Moves the ciphertext TLS queued into out_.
  void take_tls_output();
  // Encrypts plain_ (the turn's output under TLS) into out_; false if TLS
  // failed (the connection is then doomed).
  bool encrypt_pending();
  void finish(std::string_view reason);
  void update_events();
  void schedule_flush();
  // Marks the connection for closing at the end of the turn (see send()).
  void doom(const char* reason);
  void pause_input(uint64_t now_ms);
  void arm_handshake_timer();
  void cancel_timers();

  core::Loop* loop_;
  int fd_;
  std::string peer_;
  const TlsContext* tls_ctx_;
  std::unique_ptr<TlsSession> tls_;
  ConnectionHandler* handler_ = nullptr;
  std::string out_;
  size_t out_pos_ = 0;
  std::string plain_;  // plaintext for TLS, encrypted by flush()
  State state_ = State::kOpen;
  uint32_t events_ = 0;    // what epoll watches now
  bool detached_ = false;  // out of epoll while paused (the peer hung up)
  bool flush_scheduled_ = false;
  bool handshake_reported_ = false;
  const char* doomed_ = nullptr;  // why it must close at the end of the turn
  core::Loop::TimerId close_timer_ = 0;
  // limits
  ConnectionSlot slot_;
  bool limited_ = false;
  bool paused_ = false;
  TokenBucket bucket_;
  uint64_t resume_at_ = 0;  // tokens to wait for before reading again
  uint32_t handshake_timeout_ms_ = 0;
  uint64_t last_input_ms_ = 0;
  uint64_t last_output_ms_ = 0;
  core::Loop::TimerId resume_timer_ = 0;
  core::Loop::TimerId handshake_timer_ = 0;
};

}  // namespace hearth::net
