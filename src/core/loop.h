// The reactor's event loop: one thread, one epoll set, non-blocking fds,
// timers, signals through signalfd, and callbacks posted for the next turn.
// At the end of each turn the registered end-of-turn hooks run (flush
// writes, free closed connections) — see STYLE.md "Memory".
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <unordered_map>
#include <vector>

#include "core/result.h"

namespace hearth::core {

class IoHandler {
 public:
  virtual ~IoHandler() = default;
  // `events` are EPOLLIN/EPOLLOUT/EPOLLERR/EPOLLHUP bits.
  virtual void on_io(uint32_t events) = 0;
};

class Loop {
 public:
  using TimerId = uint64_t;
  using Task = std::function<void()>;

  static Result<std::unique_ptr<Loop>> create();
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  Status add(int fd, uint32_t events, IoHandler* handler);
  Status modify(int fd, uint32_t events, IoHandler* handler);
  // Stops watching fd. Handlers are freed only at the end of a turn, so one
  // that closed itself must ignore events still queued for it in this turn.
  void remove(int fd);

  // Milliseconds on the monotonic clock.
  static uint64_t now_ms();
  TimerId add_timer(uint64_t delay_ms, Task task);
  void cancel_timer(TimerId id);

  // Runs `task` at the start of the next turn (never inside this call).
  void post(Task task);
  // Runs after every turn, in registration order.
  void on_turn_end(Task task);

  // Blocks `signals` and delivers them through a signalfd.
  Status watch_signals(const std::vector<int>& signals, std::function<void(int)> handler);

  void run();
  void stop() { running_ = false; }

 private:
  Loop() = default;
  class SignalHandler;
  int epfd_ = -1;
  bool running_ = false;
  TimerId next_timer_ = 1;
  std::map<std::pair<uint64_t, TimerId>, Task> timers_;
  std::unordered_map<TimerId, uint64_t> timer_deadlines_;
  std::vector<Task> posted_;
  std::vector<Task> turn_end_;
  std::unique_ptr<SignalHandler> signal_handler_;
};

}  // namespace hearth::core
