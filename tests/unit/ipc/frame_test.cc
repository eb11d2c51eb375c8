#include "ipc/frame.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "core/loop.h"
#include "storage/codec.h"

namespace hearth::ipc {
namespace {

class IpcFrameTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv_), 0);
  }
  void TearDown() override {
    for (int fd : sv_)
      if (fd >= 0) close(fd);
  }

  // Sends raw bytes (and fds) on sv_[0], bypassing send_frame's checks.
  void send_raw(const std::string& bytes, const std::vector<int>& fds = {}) {
    struct iovec iov;
    iov.iov_base = const_cast<char*>(bytes.data());
    iov.iov_len = bytes.size();
    struct msghdr msg {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    std::vector<unsigned char> control(CMSG_SPACE(sizeof(int) * fds.size()));
    if (!fds.empty()) {
      msg.msg_control = control.data();
      msg.msg_controllen = control.size();
      struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
      memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    ASSERT_EQ(sendmsg(sv_[0], &msg, MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size()));
  }

  static std::string header(uint16_t version, uint16_t type, uint32_t id) {
    storage::Writer w;
    w.u16(version).u16(type).u32(id);
    return w.take();
  }

  int sv_[2] = {-1, -1};
};

int count_open_fds() {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  while (readdir(d) != nullptr)
    ++n;
  closedir(d);
  return n;
}

TEST_F(IpcFrameTest, RoundTrip) {
  Frame out;
  out.type = 0x1234;
  out.id = 0xdeadbeef;
  out.payload = std::string("pay\0load", 8);
  ASSERT_TRUE(send_frame(sv_[0], out).ok());
  auto in = recv_frame(sv_[1]);
  ASSERT_TRUE(in.ok()) << in.error().message;
  ASSERT_TRUE(in->has_value());
  const Frame& f = **in;
  EXPECT_EQ(f.type, 0x1234);
  EXPECT_EQ(f.id, 0xdeadbeefu);
  EXPECT_EQ(f.payload, out.payload);
  EXPECT_TRUE(f.fds.empty());
}

TEST_F(IpcFrameTest, WireHeaderIsBigEndianVersionTypeId) {
  Frame out;
  out.type = 0x0102;
  out.id = 0x03040506;
  out.payload = "xy";
  ASSERT_TRUE(send_frame(sv_[0], out).ok());
  char buf[64];
  ssize_t n = recv(sv_[1], buf, sizeof buf, 0);
  ASSERT_EQ(n, 10);
  EXPECT_EQ(std::string(buf, 10), std::string("\x00\x01\x01\x02\x03\x04\x05\x06xy", 10));
}

TEST_F(IpcFrameTest, EmptyPayloadAndMaximumSize) {
  Frame empty;
  empty.type = 1;
  ASSERT_TRUE(send_frame(sv_[0], empty).ok());
  auto a = recv_frame(sv_[1]);
  ASSERT_TRUE(a.ok() && a->has_value());
  EXPECT_TRUE((*a)->payload.empty());

  Frame big;
  big.type = 2;
  big.payload.assign(kMaxPayload, 'z');
  ASSERT_TRUE(send_frame(sv_[0], big).ok());
  auto b = recv_frame(sv_[1]);
  ASSERT_TRUE(b.ok()) << b.error().message;
  ASSERT_TRUE(b->has_value());
  EXPECT_EQ((*b)->payload.size(), kMaxPayload);
  EXPECT_EQ((*b)->payload, big.payload);
}

TEST_F(IpcFrameTest, OversizeRefusedBySender) {
  Frame big;
  big.payload.assign(kMaxPayload + 1, 'z');
  bool would_block = true;
  Status s = send_frame(sv_[0], big, &would_block);
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(would_block);
  // Nothing went out.
  auto in = recv_frame(sv_[1]);
  ASSERT_TRUE(in.ok());
  EXPECT_FALSE(in->has_value());
}

TEST_F(IpcFrameTest, OversizeRefusedByReceiver) {
  send_raw(header(kProtocolVersion, 1, 1) + std::string(kMaxPayload + 1, 'q'));
  auto in = recv_frame(sv_[1]);
  ASSERT_FALSE(in.ok());
  EXPECT_NE(in.error().message.find("maximum size"), std::string::npos) << in.error().message;
  // The next frame is read normally: the record was consumed whole.
  Frame ok;
  ok.type = 9;
  ASSERT_TRUE(send_frame(sv_[0], ok).ok());
  auto next = recv_frame(sv_[1]);
  ASSERT_TRUE(next.ok() && next->has_value());
  EXPECT_EQ((*next)->type, 9);
}

TEST_F(IpcFrameTest, ShortAndGarbageFramesRefused) {
  for (size_t len = 1; len < kHeaderSize; ++len) {
    send_raw(header(kProtocolVersion, 1, 1).substr(0, len));
    auto in = recv_frame(sv_[1]);
    EXPECT_FALSE(in.ok()) << len;
  }
  send_raw("\xff\xff garbage garbage");
  EXPECT_FALSE(recv_frame(sv_[1]).ok());
}

TEST_F(IpcFrameTest, WrongVersionRefused) {
  for (uint16_t v : {uint16_t{0}, uint16_t{2}, uint16_t{0x0100}}) {
    send_raw(header(v, 1, 1) + "payload");
    auto in = recv_frame(sv_[1]);
    ASSERT_FALSE(in.ok()) << v;
    EXPECT_NE(in.error().message.find("version"), std::string::npos);
  }
}

TEST_F(IpcFrameTest, NothingWaitingIsNullopt) {
  auto in = recv_frame(sv_[1]);
  ASSERT_TRUE(in.ok());
  EXPECT_FALSE(in->has_value());
}

TEST_F(IpcFrameTest, PeerClosedIsDistinct) {
  close(sv_[0]);
  sv_[0] = -1;
  auto in = recv_frame(sv_[1]);
  ASSERT_FALSE(in.ok());
  EXPECT_TRUE(is_peer_closed(in.error())) << in.error().message;

  Frame f;
  Status s = send_frame(sv_[1], f);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(is_peer_closed(s.error())) << s.error().message;  // EPIPE, and no SIGPIPE
}

TEST_F(IpcFrameTest, WouldBlockReportedWhenFull) {
  ASSERT_EQ(fcntl(sv_[0], F_SETFL, fcntl(sv_[0], F_GETFL) | O_NONBLOCK), 0);
  Frame f;
  f.payload.assign(8192, 'x');
  bool would_block = false;
  int sent = 0;
  for (; sent < 100000; ++sent) {
    Status s = send_frame(sv_[0], f, &would_block);
    if (!s) break;
  }
  EXPECT_TRUE(would_block);
  EXPECT_GT(sent, 0);
  // Draining makes room again.
  auto in = recv_frame(sv_[1]);
  ASSERT_TRUE(in.ok() && in->has_value());
  EXPECT_TRUE(send_frame(sv_[0], f, &would_block).ok());
  EXPECT_FALSE(would_block);
}

TEST_F(IpcFrameTest, PassesFdsThatWork) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  Frame out;
  out.type = 3;
  out.fds = {p[1]};
  ASSERT_TRUE(send_frame(sv_[0], out).ok());
  close(p[1]);  // the receiver's copy keeps the pipe open

  auto in = recv_frame(sv_[1]);
  ASSERT_TRUE(in.ok() && in->has_value());
  Frame f = std::move(**in);
  ASSERT_EQ(f.fds.size(), 1u);
  EXPECT_TRUE(fcntl(f.fds[0], F_GETFD) & FD_CLOEXEC);
  ASSERT_EQ(write(f.fds[0], "hello", 5), 5);
  f.close_fds();
  EXPECT_TRUE(f.fds.empty());
  char buf[16];
  ASSERT_EQ(read(p[0], buf, sizeof buf), 5);
  EXPECT_EQ(std::string(buf, 5), "hello");
  EXPECT_EQ(read(p[0], buf, sizeof buf), 0);  // every write end is closed
  close(p[0]);
}

TEST_F(IpcFrameTest, FourFdsAllowed) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  Frame out;
  out.fds = {p[0], p[1], p[0], p[1]};
  ASSERT_TRUE(send_frame(sv_[0], out).ok());
  auto in = recv_frame(sv_[1]);
  ASSERT_TRUE(in.ok()) << in.error().message;
  ASSERT_TRUE(in->has_value());
  EXPECT_EQ((*in)->fds.size(), 4u);
  (*in)->close_fds();
  out.fds.push_back(p[0]);
  EXPECT_FALSE(send_frame(sv_[0], out).ok());
  close(p[0]);
  close(p[1]);
}

TEST_F(IpcFrameTest, TooManyFdsRefusedAndClosed) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  int before = count_open_fds();
  send_raw(header(kProtocolVersion, 1, 1), {p[0], p[0], p[0], p[0], p[0], p[0]});
  auto in = recv_frame(sv_[1]);
  EXPECT_FALSE(in.ok());
  EXPECT_EQ(count_open_fds(), before);
  close(p[0]);
  close(p[1]);
}

TEST_F(IpcFrameTest, FdsOfABadFrameAreClosed) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  int before = count_open_fds();
  send_raw(header(7, 1, 1), {p[1]});  // wrong version
  send_raw("abc", {p[1]});            // short
  EXPECT_FALSE(recv_frame(sv_[1]).ok());
  EXPECT_FALSE(recv_frame(sv_[1]).ok());
  EXPECT_EQ(count_open_fds(), before);
  close(p[1]);
  char c;
  EXPECT_EQ(read(p[0], &c, 1), 0);  // no copy of the write end survived
  close(p[0]);
}

TEST_F(IpcFrameTest, BlockingReceiveTimesOut) {
  uint64_t start = core::Loop::now_ms();
  auto in = recv_frame_blocking(sv_[1], 50);
  EXPECT_FALSE(in.ok());
  EXPECT_GE(core::Loop::now_ms() - start, 45u);

  Frame f;
  f.type = 5;
  ASSERT_TRUE(send_frame(sv_[0], f).ok());
  auto got = recv_frame_blocking(sv_[1], -1);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->type, 5);
}

TEST_F(IpcFrameTest, CallMatchesTheReplyId) {
  Frame reply;
  reply.type = 0x81;
  reply.id = 42;
  reply.payload = "answer";
  ASSERT_TRUE(send_frame(sv_[1], reply).ok());  // already waiting
  Frame request;
  request.type = 1;
  request.id = 42;
  auto got = call(sv_[0], request, 1000);
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(got->payload, "answer");
  auto req = recv_frame(sv_[1]);
  ASSERT_TRUE(req.ok() && req->has_value());
  EXPECT_EQ((*req)->id, 42u);

  reply.id = 41;
  ASSERT_TRUE(send_frame(sv_[1], reply).ok());
  EXPECT_FALSE(call(sv_[0], request, 1000).ok());
  // No reply at all: the deadline holds.
  EXPECT_FALSE(call(sv_[0], request, 30).ok());
}

TEST(IpcWipeTest, WipeStringEmptiesIt) {
  std::string s = "secret password that is long enough to be on the heap";
  wipe_string(s);
  EXPECT_TRUE(s.empty());
  std::string shorty = "pw";
  wipe_string(shorty);
  EXPECT_TRUE(shorty.empty());
  EXPECT_EQ(std::string(shorty.data(), 2), std::string(2, '\0'));
}

}  // namespace
}  // namespace hearth::ipc
