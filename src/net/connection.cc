#include "net/connection.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "core/log.h"

namespace hearth::net {
namespace {
// One receive buffer for the whole loop (single-threaded).
char g_read_buffer[16384];
std::string g_plain;  // decrypted input scratch, reused
// Connections with output queued in this turn; flushed at its end.
std::vector<Connection*> g_dirty;

// Output buffers lent for a turn. A connection takes one when it first has
// something to say and gives it back once the socket has taken everything,
// so an idle connection holds none (its memory is what its state needs, not
// its biggest burst) and a busy reactor does no malloc/free per stanza and
// recipient: a presence fan-out to 200 contacts used to allocate and free
// about 600 strings.
class BufferPool {
 public:
  void take(std::string* s) {
    if (s->capacity() <= kInline && !free_.empty()) {
      s->swap(free_.back());
      free_.pop_back();
    }
  }
  void give(std::string* s) {
    s->clear();
    if (s->capacity() > kInline && s->capacity() <= kMaxKept && free_.size() < kMaxBuffers)
      free_.push_back(std::move(*s));
    std::string().swap(*s);
  }

 private:
  static constexpr size_t kMaxKept = 16384;  // a bigger one (a burst) is freed
  static constexpr size_t kMaxBuffers = 64;
  const size_t kInline = std::string().capacity();
  std::vector<std::string> free_;
};
BufferPool g_buffers;
constexpr uint64_t kCloseGraceMs = 3000;
}  // namespace

Connection::Connection(core::Loop* loop, int fd, std::string peer, const TlsContext* tls,
                       bool direct_tls)
    : loop_(loop), fd_(fd), peer_(std::move(peer)), tls_ctx_(tls) {
  if (direct_tls && tls_ctx_) tls_ = std::make_unique<TlsSession>(*tls_ctx_, true);
}

Connection::~Connection() {
  if (flush_scheduled_) g_dirty.erase(std::find(g_dirty.begin(), g_dirty.end(), this));
  cancel_timers();
  if (fd_ >= 0) {
    loop_->remove(fd_);
    ::close(fd_);
  }
}

Status Connection::start(ConnectionHandler* handler) {
  handler_ = handler;
  last_input_ms_ = last_output_ms_ = core::Loop::now_ms();
  events_ = EPOLLIN | EPOLLRDHUP;
  if (tls_) arm_handshake_timer();
  return loop_->add(fd_, events_, this);
}

void Connection::set_input_limit(InputLimit limit) {
  uint64_t now = core::Loop::now_ms();
  if (limit.rate == 0) {
    limited_ = false;
    if (paused_) {
      paused_ = false;
      if (resume_timer_) loop_->cancel_timer(resume_timer_);
      resume_timer_ = 0;
      update_events();
    }
    return;
  }
  uint32_t burst = std::max(limit.burst, 1u);
  if (limited_) {
    bucket_.reconfigure(limit.rate, 1000, burst, now);
  } else {
    bucket_ = TokenBucket(limit.rate, 1000, burst, now);
  }
  limited_ = true;
  // Once paused, read again when a fifth of a second's worth is back:
  // few wake-ups, and a throttled peer's stanzas still flow smoothly.
  resume_at_ = std::clamp<uint64_t>(limit.rate / 5, 1, burst);
}

void Connection::arm_handshake_timer() {
  if (handshake_timeout_ms_ == 0 || handshake_timer_) return;
  handshake_timer_ = loop_->add_timer(handshake_timeout_ms_, [this] {
    handshake_timer_ = 0;
    if (handshake_reported_ || state_ == State::kClosed) return;
    HEARTH_INFO("net", "%s: TLS handshake not finished within %u ms, closing", peer_.c_str(),
                handshake_timeout_ms_);
    finish("tls handshake timed out");
  });
}

void Connection::cancel_timers() {
  for (core::Loop::TimerId* t : {&close_timer_, &resume_timer_, &handshake_timer_}) {
    if (*t) loop_->cancel_timer(*t);
    *t = 0;
  }
}

void Connection::pause_input(uint64_t now_ms) {
  paused_ = true;
  update_events();
  uint64_t wait = std::max<uint64_t>(bucket_.ms_until(resume_at_, now_ms), 1);
  resume_timer_ = loop_->add_timer(wait, [this] {
    resume_timer_ = 0;
    paused_ = false;
    // Level-triggered: bytes waiting in the socket are reported again.
    update_events();
  });
}

void Connection::send(std::string_view data) {
  if (state_ != State::kOpen || doomed_ != nullptr || data.empty()) return;
  if (tls_ && tls_->state() == TlsSession::State::kOpen) {
    // Encrypted at the end of the turn (flush), all in one go: a client
    // that gets several stanzas in a turn gets one TLS record, not one
    // per stanza (issue 7).
    if (plain_.empty()) g_buffers.take(&plain_);
    plain_.append(data);
  } else if (tls_) {
    if (tls_->write(data) == TlsSession::State::kError) {
      doom("tls write failed");
      return;
    }
    take_tls_output();
  } else {
    if (out_pos_ == out_.size()) g_buffers.take(&out_);
    out_.append(data);
  }
  last_output_ms_ = core::Loop::now_ms();
  if (buffered() > kMaxBuffered) {
    HEARTH_WARN("net", "%s: output buffer over %zu bytes, closing", peer_.c_str(), kMaxBuffered);
    doom("output buffer full");
    return;
  }
  schedule_flush();
}

void Connection::doom(const char* reason) {
  // Not closed here: send() runs while the router walks the session lists,
  // and closing unregisters this session from them. flush() at the end of
  // the turn finishes the connection.
  doomed_ = reason;
  g_buffers.give(&out_);
  out_pos_ = 0;
  g_buffers.give(&plain_);
  schedule_flush();
}

void Connection::start_tls() {
  if (tls_ || !tls_ctx_ || state_ != State::kOpen) return;
  tls_ = std::make_unique<TlsSession>(*tls_ctx_, false);
  arm_handshake_timer();
}

void Connection::close() {
  if (state_ != State::kOpen) return;
  state_ = State::kClosing;
  if (tls_) {
    if (!encrypt_pending()) return;  // the stanzas first, then close_notify
    tls_->shutdown();
    take_tls_output();
  }
  close_timer_ = loop_->add_timer(kCloseGraceMs, [this] {
    close_timer_ = 0;
    finish("close timed out");
  });
  schedule_flush();
}

void Connection::schedule_flush() {
  if (flush_scheduled_) return;
  flush_scheduled_ = true;
  g_dirty.push_back(this);
}

void Connection::flush_all() {
  // flush() may close a connection, whose handler may queue output on
  // others: loop until nothing is dirty.
  while (!g_dirty.empty()) {
    std::vector<Connection*> batch;
    batch.swap(g_dirty);
    for (Connection* c : batch) {
      c->flush_scheduled_ = false;
      c->flush();
    }
  }
}

void Connection::on_io(uint32_t events) {
  if (state_ == State::kClosed) return;
  if (events & EPOLLOUT) flush();
  if (state_ == State::kClosed) return;
  if (paused_) {
    // EPOLLHUP/EPOLLERR are reported whatever we ask for: step out of
    // epoll until the resume timer (which reads and sees the end) instead
    // of spinning on them.
    if ((events & (EPOLLHUP | EPOLLERR)) && !detached_) {
      loop_->remove(fd_);
      detached_ = true;
    }
    return;
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) handle_read();
}

void Connection::handle_read() {
  // Bounded per turn for fairness; level-triggered epoll calls us again.
  for (int round = 0; round < 4 && state_ != State::kClosed; ++round) {
    size_t want = sizeof g_read_buffer;
    uint64_t now = core::Loop::now_ms();
    // A closing connection only drains to see the end: not counted.
    bool limit = limited_ && state_ == State::kOpen;
    if (limit) {
      uint64_t tokens = bucket_.available(now);
      if (tokens == 0) {
        pause_input(now);
        return;
      }
      want = std::min<uint64_t>(want, tokens);
    }
    ssize_t n = ::recv(fd_, g_read_buffer, want, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR) continue;
      finish(strerror(errno));
      return;
    }
    if (n == 0) {
      finish("peer closed the connection");
      return;
    }
    last_input_ms_ = now;
    if (limit) bucket_.take_up_to(static_cast<uint64_t>(n), now);
    if (state_ == State::kClosing) continue;  // draining; input is ignored
    if (!tls_) {
      handler_->on_data(std::string_view(g_read_buffer, static_cast<size_t>(n)));
      continue;
    }
    tls_->feed(std::string_view(g_read_buffer, static_cast<size_t>(n)));
    pump_tls();
  }
}

void Connection::pump_tls() {
  g_plain.clear();
  TlsSession::State st = tls_->read(&g_plain);
  if (!tls_->outgoing().empty()) {
    take_tls_output();
    schedule_flush();
  }
  if (st == TlsSession::State::kError) {
    HEARTH_INFO("net", "%s: TLS error: %s", peer_.c_str(), tls_->error().c_str());
    // Let the alert go out before closing.
    state_ = State::kClosing;
    flush();
    finish("tls error");
    return;
  }
  if (st == TlsSession::State::kOpen && !handshake_reported_) {
    handshake_reported_ = true;
    if (handshake_timer_) {
      loop_->cancel_timer(handshake_timer_);
      handshake_timer_ = 0;
    }
    HEARTH_DEBUG("net", "%s: %s %s", peer_.c_str(), tls_->version().c_str(),
                 tls_->cipher().c_str());
    handler_->on_tls_ready();
    if (state_ == State::kClosed) return;
  }
  // Handlers never read from a connection, so g_plain is not reentered.
  if (!g_plain.empty()) handler_->on_data(g_plain);
  if (st == TlsSession::State::kClosed) finish("peer sent close_notify");
}

// Idle sessions hold no output buffer at all: an idle client costs what its
// state needs, not the capacity of the biggest burst it ever received (the
// handshake flight, a roster). When nothing of ours waits, the ciphertext
// buffer is adopted instead of copied, and TLS starts its next record in a
// lent one; flush() gives out_ back to the pool once it is sent.
void Connection::take_tls_output() {
  std::string& pending = tls_->outgoing();
  if (pending.empty()) return;
  if (out_pos_ == out_.size()) {
    out_.swap(pending);
    out_pos_ = 0;
  } else {
    out_.append(pending);
  }
  g_buffers.give(&pending);
}

bool Connection::encrypt_pending() {
  if (plain_.empty()) return true;
  if (tls_->state() != TlsSession::State::kOpen) {
    // TLS failed or the peer closed it: nothing more can be said (a
    // pending alert is already in out_).
    g_buffers.give(&plain_);
    return true;
  }
  // The records go straight into a lent buffer, which out_ then adopts.
  if (tls_->outgoing().empty()) g_buffers.take(&tls_->outgoing());
  TlsSession::State st = tls_->write(plain_);
  g_buffers.give(&plain_);
  if (st == TlsSession::State::kError) {
    doom("tls write failed");
    return false;
  }
  take_tls_output();
  return true;
}

void Connection::flush() {
  if (state_ == State::kClosed) return;
  if (doomed_ == nullptr && tls_) encrypt_pending();
  if (doomed_ != nullptr) {
    finish(doomed_);
    return;
  }
  while (out_pos_ < out_.size()) {
    ssize_t n = ::send(fd_, out_.data() + out_pos_, out_.size() - out_pos_, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      finish(strerror(errno));
      return;
    }
    out_pos_ += static_cast<size_t>(n);
  }
  if (out_pos_ == out_.size()) {
    // Idle connections keep no buffer: it goes back to the pool.
    g_buffers.give(&out_);
    out_pos_ = 0;
    if (state_ == State::kClosing) {
      ::shutdown(fd_, SHUT_WR);
      finish("closed");
      return;
    }
  } else if (out_pos_ > 65536) {
    out_.erase(0, out_pos_);
    out_pos_ = 0;
  }
  update_events();
}

void Connection::update_events() {
  if (state_ == State::kClosed || fd_ < 0) return;
  bool want_out = out_pos_ < out_.size();
  uint32_t ev = (paused_ ? 0u : static_cast<uint32_t>(EPOLLIN | EPOLLRDHUP)) |
                (want_out ? static_cast<uint32_t>(EPOLLOUT) : 0u);
  if (detached_) {
    if (paused_) return;  // the resume timer brings it back
    detached_ = false;
    events_ = ev;
    (void)loop_->add(fd_, ev, this);
    return;
  }
  if (ev == events_) return;
  events_ = ev;
  (void)loop_->modify(fd_, ev, this);
}

void Connection::finish(std::string_view reason) {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  ++closed_total_;
  cancel_timers();
  paused_ = false;
  slot_.release();
  loop_->remove(fd_);
  ::close(fd_);
  fd_ = -1;
  if (handler_) handler_->on_closed(reason);
}

}  // namespace hearth::net
