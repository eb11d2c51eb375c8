#include "loop.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace hearth::bench {

int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

Loop::Loop() {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) {
    perror("epoll_create1");
    exit(2);
  }
}

Loop::~Loop() {
  if (epfd_ >= 0) close(epfd_);
}

void Loop::add(int fd, uint32_t events, Handler* h) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = h;
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    perror("epoll_ctl add");
    exit(2);
  }
}

void Loop::modify(int fd, uint32_t events, Handler* h) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = h;
  if (epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) != 0) {
    perror("epoll_ctl mod");
    exit(2);
  }
}

void Loop::remove(int fd) {
  epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
}

void Loop::run_once(int timeout_ms) {
  epoll_event events[256];
  int n = epoll_wait(epfd_, events, 256, timeout_ms);
  if (n < 0) {
    if (errno == EINTR) return;
    perror("epoll_wait");
    exit(2);
  }
  for (int i = 0; i < n; ++i) {
    static_cast<Handler*>(events[i].data.ptr)->on_event(events[i].events);
  }
}

}  // namespace hearth::bench
