#include "net/listener.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vector>

namespace hearth::net {
namespace {

int connect_to(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a {};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<struct sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

TEST(Listener, AcceptsAndReportsThePeer) {
  auto loop = core::Loop::create();
  ASSERT_TRUE(loop.ok());
  auto l = Listener::bind("127.0.0.1", 0);
  ASSERT_TRUE(l.ok()) << l.error().message;
  std::vector<std::string> peers;
  ASSERT_TRUE(l.value()
                  ->start(loop->get(),
                          [&](int fd, std::string peer) {
                            peers.push_back(peer);
                            close(fd);
                            (*loop)->stop();
                          })
                  .ok());
  int c = connect_to(l.value()->port());
  ASSERT_GE(c, 0);
  (*loop)->add_timer(5000, [&] { (*loop)->stop(); });
  (*loop)->run();
  close(c);
  ASSERT_EQ(peers.size(), 1u);
  EXPECT_EQ(peers[0].rfind("127.0.0.1:", 0), 0u) << peers[0];
}

// Out of descriptors, accept() fails with EMFILE while the connection stays
// in the backlog: the listener must pause instead of spinning on it, and
// accept the connection once descriptors are free again.
TEST(Listener, PausesWhenOutOfDescriptorsAndResumes) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto loop = core::Loop::create();
    auto l = Listener::bind("127.0.0.1", 0);
    if (!loop.ok() || !l.ok()) _exit(10);
    int accepted = 0;
    if (!l.value()
             ->start(loop->get(),
                     [&](int fd, std::string) {
                       ++accepted;
                       close(fd);
                       (*loop)->stop();
                     })
             .ok())
      _exit(11);
    int c = connect_to(l.value()->port());
    if (c < 0) _exit(12);
    // Use up every descriptor below a limit just above what is open now.
    int spare = dup(0);
    struct rlimit rl {};
    rl.rlim_cur = rl.rlim_max = static_cast<rlim_t>(spare + 1);
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) _exit(13);
    l.value()->on_io(0);  // accept4 -> EMFILE
    if (!l.value()->paused() || accepted != 0) _exit(14);
    close(spare);  // a descriptor is free again; the pause ends by itself
    (*loop)->add_timer(5000, [&] { (*loop)->stop(); });
    (*loop)->run();
    if (accepted != 1 || l.value()->paused()) _exit(15);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace hearth::net
