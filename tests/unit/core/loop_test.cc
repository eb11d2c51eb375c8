#include "core/loop.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace hearth::core {
namespace {

std::unique_ptr<Loop> make_loop() {
  Result<std::unique_ptr<Loop>> loop = Loop::create();
  EXPECT_TRUE(loop.ok());
  return std::move(loop.value());
}

TEST(Loop, TimersFireInDeadlineOrderAndCancelledOnesDoNot) {
  auto loop = make_loop();
  std::vector<int> fired;
  loop->add_timer(30, [&] { fired.push_back(3); });
  loop->add_timer(10, [&] { fired.push_back(1); });
  Loop::TimerId cancelled = loop->add_timer(20, [&] { fired.push_back(2); });
  loop->add_timer(40, [&] { loop->stop(); });
  loop->cancel_timer(cancelled);
  loop->run();
  EXPECT_EQ(fired, (std::vector<int>{1, 3}));
}

TEST(Loop, PostedTasksRunOnALaterTurnNotInline) {
  auto loop = make_loop();
  std::vector<std::string> order;
  loop->post([&] {
    order.push_back("first");
    loop->post([&] {
      order.push_back("second");
      loop->stop();
    });
    order.push_back("after-post");
  });
  order.push_back("before-run");
  loop->run();
  EXPECT_EQ(order, (std::vector<std::string>{"before-run", "first", "after-post", "second"}));
}

class PipeReader : public IoHandler {
 public:
  explicit PipeReader(int fd) : fd_(fd) {}
  void on_io(uint32_t events) override {
    if (events & EPOLLIN) {
      char buf[64];
      ssize_t n = read(fd_, buf, sizeof buf);
      if (n > 0) data.append(buf, static_cast<size_t>(n));
    }
  }
  std::string data;

 private:
  int fd_;
};

TEST(Loop, DeliversReadinessAndRunsTurnEndHooks) {
  auto loop = make_loop();
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  PipeReader reader(fds[0]);
  ASSERT_TRUE(loop->add(fds[0], EPOLLIN, &reader).ok());
  int turn_ends = 0;
  loop->on_turn_end([&] {
    ++turn_ends;
    if (reader.data == "hello") loop->stop();
  });
  ASSERT_EQ(write(fds[1], "hello", 5), 5);
  loop->add_timer(5000, [&] { loop->stop(); });  // guard against a hang
  loop->run();
  EXPECT_EQ(reader.data, "hello");
  EXPECT_GE(turn_ends, 1);
  loop->remove(fds[0]);
  close(fds[0]);
  close(fds[1]);
}

TEST(Loop, SignalsArriveThroughSignalfd) {
  auto loop = make_loop();
  int got = 0;
  ASSERT_TRUE(loop->watch_signals({SIGUSR1},
                                  [&](int sig) {
                                    got = sig;
                                    loop->stop();
                                  })
                  .ok());
  loop->post([] { kill(getpid(), SIGUSR1); });
  loop->add_timer(5000, [&] { loop->stop(); });
  loop->run();
  EXPECT_EQ(got, SIGUSR1);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigprocmask(SIG_UNBLOCK, &set, nullptr);
}

}  // namespace
}  // namespace hearth::core
