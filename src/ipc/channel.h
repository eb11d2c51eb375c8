// The reactor's end of one worker connection, on the Loop, non-blocking.
// Requests get an id and a deadline; every request's callback runs exactly
// once, always from the loop (never inside request()):
//   - with the worker's reply (the frame with the request's id), or
//   - with an error "worker timed out" when the deadline passes (a reply that
//     arrives later is dropped), or
//   - with an error "worker died" when the connection breaks (EOF,
//     ECONNRESET, EPIPE), or "worker protocol error: ..." when the worker
//     sent something it must not (a bad frame, a reply to no request) —
//     every request pending on that connection fails, none hangs.
// After a break the channel waits for attach() of the restarted worker's
// socket; requests made meanwhile are queued (under their deadlines) and go
// to the new worker. The owner learns of a break through on_down.
//
// Destroying the Channel drops pending callbacks without calling them. It
// must outlive no Loop; destroy it at the end of a turn, not from inside one
// of its own callbacks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_set>

#include "core/loop.h"
#include "core/result.h"
#include "ipc/frame.h"
#include "ipc/messages.h"

namespace hearth::ipc {

class Channel final : public core::IoHandler {
 public:
  using Done = std::function<void(Result<Frame>)>;
  using OnDown = std::function<void(const std::string& reason)>;
  static constexpr int kNoTimeout = -1;

  // `name` ("auth", "keyholder") appears in log lines.
  Channel(core::Loop* loop, std::string name);
  ~Channel() override;
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  // Adopts `fd` (one end of a SOCK_SEQPACKET socketpair; made non-blocking,
  // closed by the Channel). If a connection is still up it is dropped first
  // (its requests fail with "worker died"). Queued requests are sent.
  Status attach(int fd);
  // Drops the connection for good (shutdown): pending and later requests
  // fail with "channel closed"; on_down is not called. attach() reopens.
  void close();
  // A caller found a reply it cannot accept (undecodable, wrong type): the
  // connection is treated as broken like any other protocol error.
  void fail(const std::string& reason);

  // Called (from the loop, after the failed requests' callbacks) when a
  // connection breaks.
  void set_on_down(OnDown on_down) { on_down_ = std::move(on_down); }
  // Frames with id kEventId are notices from the worker, not replies; they
  // go here (without this handler they are protocol errors).
  static constexpr uint32_t kEventId = 0;
  using OnEvent = std::function<void(Frame frame)>;
  void set_on_event(OnEvent on_event) { on_event_ = std::move(on_event); }

  // Sends a request. `timeout_ms` > 0, or kNoTimeout. `done` must be set.
  void request(uint16_t type, std::string payload, int timeout_ms, Done done);
  void request(MsgType type, std::string payload, int timeout_ms, Done done) {
    request(static_cast<uint16_t>(type), std::move(payload), timeout_ms, std::move(done));
  }

  bool connected() const { return fd_ >= 0; }
  // Changes with every attach(): a worker-side id (a SASL exchange) from one
  // generation means nothing to the worker of the next.
  uint64_t generation() const { return generation_; }
  size_t pending() const { return pending_.size(); }
  core::Loop* loop() const { return loop_; }

  void on_io(uint32_t events) override;

 private:
  struct Pending {
    Done done;
    core::Loop::TimerId timer = 0;
    bool sent = false;
  };

  uint32_t next_request_id();
  void flush();
  void watch(bool want_write);
  void on_timeout(uint32_t id);
  void on_frame(Frame frame);
  // Drops the connection; pending requests fail with `reason` on a later
  // turn, then on_down runs if `notify`.
  void down(const std::string& reason, bool notify);

  core::Loop* loop_;
  std::string name_;
  int fd_ = -1;
  bool closed_ = false;
  bool want_write_ = false;
  uint64_t generation_ = 0;
  uint32_t next_id_ = 1;
  std::map<uint32_t, Pending> pending_;
  std::deque<Frame> out_;  // not yet sent, in order
  // Requests that timed out after being sent: their late replies are dropped
  // instead of breaking the connection.
  std::unordered_set<uint32_t> late_;
  OnDown on_down_;
  OnEvent on_event_;
  // Lets posted tasks see whether the Channel still exists.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace hearth::ipc
