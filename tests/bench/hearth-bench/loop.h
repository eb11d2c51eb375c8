// A small level-triggered epoll loop for hearth-bench: one thread drives every
// client connection (no thread per client).
#pragma once

#include <cstdint>

namespace hearth::bench {

// Monotonic clock in nanoseconds.
int64_t now_ns();

class Handler {
 public:
  virtual ~Handler() = default;
  virtual void on_event(uint32_t events) = 0;
};

class Loop {
 public:
  Loop();
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  void add(int fd, uint32_t events, Handler* h);
  void modify(int fd, uint32_t events, Handler* h);
  void remove(int fd);
  // Waits up to timeout_ms and dispatches what is ready.
  void run_once(int timeout_ms);

 private:
  int epfd_ = -1;
};

}  // namespace hearth::bench
