#include "core/loop.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>

#include "core/log.h"

namespace hearth::core {

class Loop::SignalHandler : public IoHandler {
 public:
  SignalHandler(int fd, std::function<void(int)> fn) : fd_(fd), fn_(std::move(fn)) {}
  ~SignalHandler() override { close(fd_); }
  void on_io(uint32_t) override {
    struct signalfd_siginfo info;
    for (;;) {
      ssize_t n = read(fd_, &info, sizeof info);
      if (n != static_cast<ssize_t>(sizeof info)) return;  // EAGAIN or short: done
      fn_(static_cast<int>(info.ssi_signo));
    }
  }
  int fd() const { return fd_; }

 private:
  int fd_;
  std::function<void(int)> fn_;
};

Result<std::unique_ptr<Loop>> Loop::create() {
  std::unique_ptr<Loop> loop(new Loop());
  loop->epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (loop->epfd_ < 0) return make_error(std::string("epoll_create1: ") + strerror(errno));
  return loop;
}

Loop::~Loop() {
  signal_handler_.reset();
  if (epfd_ >= 0) close(epfd_);
}

Status Loop::add(int fd, uint32_t events, IoHandler* handler) {
  struct epoll_event ev {};
  ev.events = events;
  ev.data.ptr = handler;
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0)
    return make_error(std::string("epoll_ctl add: ") + strerror(errno));
  return {};
}

Status Loop::modify(int fd, uint32_t events, IoHandler* handler) {
  struct epoll_event ev {};
  ev.events = events;
  ev.data.ptr = handler;
  if (epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) != 0)
    return make_error(std::string("epoll_ctl mod: ") + strerror(errno));
  return {};
}

void Loop::remove(int fd) {
  epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
}

uint64_t Loop::now_ms() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000u + static_cast<uint64_t>(ts.tv_nsec) / 1000000u;
}

Loop::TimerId Loop::add_timer(uint64_t delay_ms, Task task) {
  TimerId id = next_timer_++;
  uint64_t deadline = now_ms() + delay_ms;
  timers_.emplace(std::make_pair(deadline, id), std::move(task));
  timer_deadlines_.emplace(id, deadline);
  return id;
}

void Loop::cancel_timer(TimerId id) {
  auto it = timer_deadlines_.find(id);
  if (it == timer_deadlines_.end()) return;
  timers_.erase(std::make_pair(it->second, id));
  timer_deadlines_.erase(it);
}

void Loop::post(Task task) {
  posted_.push_back(std::move(task));
}

void Loop::on_turn_end(Task task) {
  turn_end_.push_back(std::move(task));
}

Status Loop::watch_signals(const std::vector<int>& signals, std::function<void(int)> handler) {
  sigset_t set;
  sigemptyset(&set);
  for (int s : signals)
    sigaddset(&set, s);
  if (sigprocmask(SIG_BLOCK, &set, nullptr) != 0)
    return make_error(std::string("sigprocmask: ") + strerror(errno));
  int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) return make_error(std::string("signalfd: ") + strerror(errno));
  signal_handler_ = std::make_unique<SignalHandler>(fd, std::move(handler));
  return add(fd, EPOLLIN, signal_handler_.get());
}

void Loop::run() {
  running_ = true;
  constexpr int kMaxEvents = 64;
  struct epoll_event events[kMaxEvents];
  while (running_) {
    int timeout = -1;
    if (!posted_.empty()) {
      timeout = 0;
    } else if (!timers_.empty()) {
      uint64_t now = now_ms();
      uint64_t first = timers_.begin()->first.first;
      timeout = first <= now ? 0 : static_cast<int>(std::min<uint64_t>(first - now, 60000));
    }
    int n = epoll_wait(epfd_, events, kMaxEvents, timeout);
    if (n < 0 && errno != EINTR) {
      HEARTH_ERROR("loop", "epoll_wait: %s", strerror(errno));
      break;
    }
    for (int i = 0; i < n; ++i) {
      auto* handler = static_cast<IoHandler*>(events[i].data.ptr);
      handler->on_io(events[i].events);
    }
    // Timers due now.
    uint64_t now = now_ms();
    while (!timers_.empty() && timers_.begin()->first.first <= now) {
      auto node = timers_.extract(timers_.begin());
      timer_deadlines_.erase(node.key().second);
      node.mapped()();
    }
    // Posted tasks (those posted while running these wait for the next turn).
    if (!posted_.empty()) {
      std::vector<Task> tasks;
      tasks.swap(posted_);
      for (auto& t : tasks)
        t();
    }
    for (auto& t : turn_end_)
      t();
  }
}

}  // namespace hearth::core
