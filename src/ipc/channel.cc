#include "ipc/channel.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <utility>
#include <vector>

#include "core/log.h"

namespace hearth::ipc {
namespace {

// Frames handled per on_io() before yielding to other connections (epoll is
// level-triggered, the rest comes next turn).
constexpr int kFramesPerWakeup = 64;
// Timed-out requests whose replies may still come. A worker that leaves this
// many unanswered is stuck: the connection is dropped.
constexpr size_t kMaxLate = 1024;

}  // namespace

Channel::Channel(core::Loop* loop, std::string name) : loop_(loop), name_(std::move(name)) {}

Channel::~Channel() {
  *alive_ = false;
  for (auto& [id, p] : pending_)
    if (p.timer != 0) loop_->cancel_timer(p.timer);
  for (auto& f : out_)
    f.wipe_payload();
  if (fd_ >= 0) {
    loop_->remove(fd_);
    ::close(fd_);
  }
}

Status Channel::attach(int fd) {
  // The monitor restarted the worker before this side saw the old socket
  // break: the owner knows already, so no on_down.
  if (fd_ >= 0) down("worker died", false);
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
    Error e = make_error(std::string("ipc: fcntl: ") + strerror(errno));
    ::close(fd);
    return e;
  }
  want_write_ = false;
  if (Status s = loop_->add(fd, EPOLLIN, this); !s) {
    ::close(fd);
    return s;
  }
  fd_ = fd;
  closed_ = false;
  ++generation_;
  HEARTH_DEBUG("ipc", "%s: attached (generation %llu)", name_.c_str(),
               static_cast<unsigned long long>(generation_));
  flush();
  return {};
}

void Channel::close() {
  down("channel closed", false);
  closed_ = true;
}

void Channel::fail(const std::string& reason) {
  if (fd_ < 0) return;
  HEARTH_WARN("ipc", "%s: %s", name_.c_str(), reason.c_str());
  down("worker protocol error: " + reason, true);
}

uint32_t Channel::next_request_id() {
  for (;;) {
    uint32_t id = next_id_++;
    if (id == 0) continue;
    if (pending_.count(id) || late_.count(id)) continue;
    return id;
  }
}

void Channel::request(uint16_t type, std::string payload, int timeout_ms, Done done) {
  if (closed_) {
    wipe_string(payload);
    std::weak_ptr<bool> alive = alive_;
    loop_->post([alive, done = std::move(done)] {
      if (alive.lock() && *alive.lock()) done(make_error("channel closed"));
    });
    return;
  }
  uint32_t id = next_request_id();
  Pending& p = pending_[id];
  p.done = std::move(done);
  if (timeout_ms > 0) {
    p.timer = loop_->add_timer(static_cast<uint64_t>(timeout_ms), [this, id] { on_timeout(id); });
  }
  Frame f;
  f.type = type;
  f.id = id;
  f.payload = std::move(payload);
  out_.push_back(std::move(f));
  if (fd_ >= 0 && !want_write_) flush();
}

void Channel::flush() {
  while (fd_ >= 0 && !out_.empty()) {
    bool would_block = false;
    Status s = send_frame(fd_, out_.front(), &would_block);
    if (!s) {
      if (would_block) {
        watch(true);
        return;
      }
      HEARTH_WARN("ipc", "%s: send: %s", name_.c_str(), s.error().message.c_str());
      down(is_peer_closed(s.error()) ? "worker died" : "worker connection failed", true);
      return;
    }
    auto it = pending_.find(out_.front().id);
    if (it != pending_.end()) it->second.sent = true;
    out_.front().wipe_payload();
    out_.pop_front();
  }
  if (fd_ >= 0) watch(false);
}

void Channel::watch(bool want_write) {
  if (want_write == want_write_) return;
  want_write_ = want_write;
  if (Status s = loop_->modify(fd_, want_write ? (EPOLLIN | EPOLLOUT) : EPOLLIN, this); !s) {
    HEARTH_ERROR("ipc", "%s: %s", name_.c_str(), s.error().message.c_str());
  }
}

void Channel::on_timeout(uint32_t id) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  Done done = std::move(it->second.done);
  bool sent = it->second.sent;
  pending_.erase(it);
  if (sent) {
    late_.insert(id);
  } else {
    for (auto f = out_.begin(); f != out_.end(); ++f) {
      if (f->id == id) {
        f->wipe_payload();
        out_.erase(f);
        break;
      }
    }
  }
  HEARTH_WARN("ipc", "%s: request %u timed out", name_.c_str(), id);
  if (late_.size() > kMaxLate) down("worker not answering", true);
  done(make_error("worker timed out"));
}

void Channel::on_io(uint32_t events) {
  // The event may belong to a connection already replaced by attach() in
  // this turn: act only on what the current socket reports.
  if (fd_ < 0) return;
  if (events & EPOLLOUT) {
    flush();  // stops watching EPOLLOUT once everything is out
    if (fd_ < 0) return;
  }
  std::weak_ptr<bool> alive = alive_;
  uint64_t generation = generation_;
  for (int i = 0; i < kFramesPerWakeup; ++i) {
    auto got = recv_frame(fd_);
    if (!got) {
      if (is_peer_closed(got.error())) {
        HEARTH_WARN("ipc", "%s: worker closed the connection", name_.c_str());
        down("worker died", true);
      } else {
        HEARTH_WARN("ipc", "%s: %s", name_.c_str(), got.error().message.c_str());
        down("worker protocol error: " + got.error().message, true);
      }
      return;
    }
    if (!got->has_value()) return;
    on_frame(std::move(**got));
    // The callback may have destroyed or re-attached the channel.
    auto still = alive.lock();
    if (!still || !*still || fd_ < 0 || generation_ != generation) return;
  }
}

void Channel::on_frame(Frame frame) {
  if (frame.id == kEventId && on_event_ && frame.fds.empty()) {
    // A notice the worker sends on its own (e.g. an account removed by
    // `hearth user del`); never a reply.
    on_event_(std::move(frame));
    return;
  }
  auto it = pending_.find(frame.id);
  if (it == pending_.end() || !it->second.sent) {
    frame.close_fds();
    frame.wipe_payload();
    if (late_.erase(frame.id)) {
      HEARTH_DEBUG("ipc", "%s: dropped the late reply to request %u", name_.c_str(), frame.id);
      return;
    }
    HEARTH_WARN("ipc", "%s: unsolicited %s frame (id %u)", name_.c_str(),
                std::string(msg_type_name(frame.type)).c_str(), frame.id);
    down("worker protocol error: unsolicited frame", true);
    return;
  }
  Done done = std::move(it->second.done);
  if (it->second.timer != 0) loop_->cancel_timer(it->second.timer);
  pending_.erase(it);
  done(std::move(frame));
}

void Channel::down(const std::string& reason, bool notify) {
  if (fd_ >= 0) {
    loop_->remove(fd_);
    ::close(fd_);
    fd_ = -1;
  }
  want_write_ = false;
  for (auto& f : out_)
    f.wipe_payload();
  out_.clear();
  late_.clear();
  std::vector<Done> failed;
  for (auto& [id, p] : pending_) {
    if (p.timer != 0) loop_->cancel_timer(p.timer);
    failed.push_back(std::move(p.done));
  }
  pending_.clear();
  if (failed.empty() && !notify) return;
  std::weak_ptr<bool> alive = alive_;
  OnDown on_down = notify ? on_down_ : OnDown();
  loop_->post([alive, reason, failed = std::move(failed), on_down = std::move(on_down)] {
    for (const auto& done : failed) {
      auto still = alive.lock();
      if (!still || !*still) return;
      done(make_error(reason));
    }
    auto still = alive.lock();
    if (still && *still && on_down) on_down(reason);
  });
}

}  // namespace hearth::ipc
