#include "ipc/channel.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/loop.h"
#include "ipc/frame.h"

namespace hearth::ipc {
namespace {

struct Outcome {
  int calls = 0;
  bool ok = false;
  std::string payload;  // the reply's, or the error message
  size_t fds = 0;
};

class IpcChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto l = core::Loop::create();
    ASSERT_TRUE(l.ok());
    loop_ = std::move(l.value());
    channel_ = std::make_unique<Channel>(loop_.get(), "test");
    channel_->set_on_down([this](const std::string& reason) { downs_.push_back(reason); });
    connect();
  }
  void TearDown() override {
    channel_.reset();
    if (worker_ >= 0) close(worker_);
  }

  // A fresh socketpair: the channel gets one end, the test plays the worker
  // on the other.
  void connect() {
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    if (worker_ >= 0) close(worker_);
    worker_ = sv[1];
    ASSERT_TRUE(channel_->attach(sv[0]).ok());
  }

  Channel::Done record(Outcome* o) {
    return [o](Result<Frame> r) {
      ++o->calls;
      o->ok = r.ok();
      if (r.ok()) {
        o->payload = r->payload;
        o->fds = r->fds.size();
        r->close_fds();
      } else {
        o->payload = r.error().message;
      }
    };
  }

  // Runs the loop until `pred` holds (checked every millisecond) or
  // `max_ms` pass; returns pred().
  bool run_until(const std::function<bool()>& pred, int max_ms = 3000) {
    uint64_t deadline = core::Loop::now_ms() + static_cast<uint64_t>(max_ms);
    std::function<void()> tick = [&] {
      if (pred() || core::Loop::now_ms() >= deadline) {
        loop_->stop();
      } else {
        loop_->add_timer(1, tick);
      }
    };
    loop_->add_timer(0, tick);
    loop_->run();
    return pred();
  }
  void run_for(int ms) {
    run_until([] { return false; }, ms);
  }

  Frame worker_recv() {
    auto f = recv_frame_blocking(worker_, 2000);
    EXPECT_TRUE(f.ok()) << (f.ok() ? "" : f.error().message);
    return f.ok() ? std::move(f.value()) : Frame{};
  }
  void worker_reply(const Frame& request, std::string payload, std::vector<int> fds = {}) {
    Frame reply;
    reply.type = static_cast<uint16_t>(request.type | 0x80);
    reply.id = request.id;
    reply.payload = std::move(payload);
    reply.fds = std::move(fds);
    ASSERT_TRUE(send_frame(worker_, reply).ok());
  }

  std::unique_ptr<core::Loop> loop_;
  std::unique_ptr<Channel> channel_;
  int worker_ = -1;
  std::vector<std::string> downs_;
};

TEST_F(IpcChannelTest, RepliesAreMatchedById) {
  Outcome o[3];
  for (int i = 0; i < 3; ++i)
    channel_->request(0x0101, "req" + std::to_string(i), 2000, record(&o[i]));
  EXPECT_EQ(channel_->pending(), 3u);
  std::vector<Frame> got;
  for (int i = 0; i < 3; ++i)
    got.push_back(worker_recv());
  EXPECT_EQ(got[0].payload, "req0");
  EXPECT_EQ(got[2].payload, "req2");
  EXPECT_EQ(got[0].type, 0x0101);
  EXPECT_NE(got[0].id, got[1].id);
  EXPECT_NE(got[1].id, got[2].id);
  // Answer out of order.
  worker_reply(got[2], "rep-req2");
  worker_reply(got[0], "rep-req0");
  worker_reply(got[1], "rep-req1");
  ASSERT_TRUE(run_until([&] { return o[0].calls && o[1].calls && o[2].calls; }));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(o[i].calls, 1);
    EXPECT_TRUE(o[i].ok);
    EXPECT_EQ(o[i].payload, "rep-req" + std::to_string(i));
  }
  EXPECT_EQ(channel_->pending(), 0u);
  EXPECT_TRUE(downs_.empty());
  EXPECT_TRUE(channel_->connected());
}

TEST_F(IpcChannelTest, CallbacksAreNeverInline) {
  Outcome answered, closed;
  channel_->request(1, "x", 2000, record(&answered));
  Frame req = worker_recv();
  worker_reply(req, "y");
  EXPECT_EQ(answered.calls, 0);  // the reply waits for the loop

  channel_->close();
  EXPECT_FALSE(channel_->connected());
  channel_->request(1, "z", 2000, record(&closed));
  EXPECT_EQ(closed.calls, 0);
  EXPECT_EQ(answered.calls, 0);  // failing it waits for the loop too
  ASSERT_TRUE(run_until([&] { return answered.calls && closed.calls; }));
  EXPECT_FALSE(answered.ok);
  EXPECT_EQ(answered.payload, "channel closed");
  EXPECT_FALSE(closed.ok);
  EXPECT_EQ(closed.payload, "channel closed");
  EXPECT_TRUE(downs_.empty());  // close() is not a worker failure
}

TEST_F(IpcChannelTest, TimeoutFiresAndALateReplyIsDropped) {
  Outcome o;
  uint64_t start = core::Loop::now_ms();
  channel_->request(1, "slow", 60, record(&o));
  Frame req = worker_recv();
  ASSERT_TRUE(run_until([&] { return o.calls > 0; }));
  EXPECT_GE(core::Loop::now_ms() - start, 55u);
  EXPECT_EQ(o.calls, 1);
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.payload, "worker timed out");
  EXPECT_EQ(channel_->pending(), 0u);

  // The late reply neither reaches anyone nor breaks the connection.
  worker_reply(req, "late");
  Outcome next;
  channel_->request(1, "next", 2000, record(&next));
  Frame req2 = worker_recv();
  worker_reply(req2, "fresh");
  ASSERT_TRUE(run_until([&] { return next.calls > 0; }));
  EXPECT_TRUE(next.ok);
  EXPECT_EQ(next.payload, "fresh");
  EXPECT_EQ(o.calls, 1);
  EXPECT_TRUE(downs_.empty());
  EXPECT_TRUE(channel_->connected());
}

TEST_F(IpcChannelTest, WorkerDeathFailsEveryPendingRequestExactlyOnce) {
  Outcome o[3];
  for (auto& out : o)
    channel_->request(1, "r", 200, record(&out));
  worker_recv();
  close(worker_);
  worker_ = -1;
  ASSERT_TRUE(run_until([&] { return o[0].calls && o[1].calls && o[2].calls; }));
  run_for(300);  // past the deadlines: the timers must be gone
  for (auto& out : o) {
    EXPECT_EQ(out.calls, 1);
    EXPECT_FALSE(out.ok);
    EXPECT_EQ(out.payload, "worker died");
  }
  ASSERT_EQ(downs_.size(), 1u);
  EXPECT_EQ(downs_[0], "worker died");
  EXPECT_FALSE(channel_->connected());
  EXPECT_EQ(channel_->pending(), 0u);
}

TEST_F(IpcChannelTest, AttachAfterDeathServesQueuedAndNewRequests) {
  uint64_t gen = channel_->generation();
  Outcome lost;
  channel_->request(1, "lost", 2000, record(&lost));
  close(worker_);
  worker_ = -1;
  ASSERT_TRUE(run_until([&] { return lost.calls > 0; }));
  EXPECT_EQ(lost.payload, "worker died");

  // Made while no worker is there: waits for the next one.
  Outcome waiting;
  channel_->request(1, "waiting", 2000, record(&waiting));
  run_for(20);
  EXPECT_EQ(waiting.calls, 0);

  connect();
  EXPECT_GT(channel_->generation(), gen);
  Frame req = worker_recv();
  EXPECT_EQ(req.payload, "waiting");
  worker_reply(req, "served");
  Outcome after;
  channel_->request(1, "after", 2000, record(&after));
  Frame req2 = worker_recv();
  worker_reply(req2, "served too");
  ASSERT_TRUE(run_until([&] { return waiting.calls && after.calls; }));
  EXPECT_TRUE(waiting.ok);
  EXPECT_EQ(waiting.payload, "served");
  EXPECT_TRUE(after.ok);
  EXPECT_EQ(after.payload, "served too");
  EXPECT_EQ(lost.calls, 1);
}

TEST_F(IpcChannelTest, AttachWhileUpFailsTheOldRequests) {
  Outcome old;
  channel_->request(1, "old", 2000, record(&old));
  int old_worker = worker_;
  worker_ = -1;
  connect();  // the monitor's new socket arrives before the old one's EOF
  ASSERT_TRUE(run_until([&] { return old.calls > 0; }));
  EXPECT_EQ(old.payload, "worker died");
  EXPECT_TRUE(downs_.empty());
  EXPECT_TRUE(channel_->connected());
  close(old_worker);
  run_for(20);
  EXPECT_TRUE(channel_->connected());  // the old socket's end is no concern of the new
}

TEST_F(IpcChannelTest, UnsolicitedFrameBreaksTheConnection) {
  Outcome o;
  channel_->request(1, "r", 2000, record(&o));
  Frame req = worker_recv();
  Frame bogus;
  bogus.type = 0x0181;
  bogus.id = req.id + 1000;
  ASSERT_TRUE(send_frame(worker_, bogus).ok());
  ASSERT_TRUE(run_until([&] { return o.calls > 0; }));
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.payload.rfind("worker protocol error", 0), 0u) << o.payload;
  ASSERT_TRUE(run_until([&] { return !downs_.empty(); }));
  EXPECT_FALSE(channel_->connected());
  // The worker sees its socket closed.
  auto eof = recv_frame_blocking(worker_, 1000);
  ASSERT_FALSE(eof.ok());
  EXPECT_TRUE(is_peer_closed(eof.error()));
}

TEST_F(IpcChannelTest, GarbageBreaksTheConnection) {
  Outcome o;
  channel_->request(1, "r", 2000, record(&o));
  ASSERT_EQ(send(worker_, "junk", 4, 0), 4);
  ASSERT_TRUE(run_until([&] { return o.calls > 0 && !downs_.empty(); }));
  EXPECT_FALSE(o.ok);
  EXPECT_NE(downs_[0].find("protocol error"), std::string::npos);
}

TEST_F(IpcChannelTest, FailFromTheOwnerBreaksTheConnection) {
  Outcome o;
  channel_->request(1, "r", 2000, record(&o));
  channel_->fail("reply of the wrong type");
  EXPECT_EQ(o.calls, 0);
  ASSERT_TRUE(run_until([&] { return o.calls > 0 && !downs_.empty(); }));
  EXPECT_EQ(o.payload, "worker protocol error: reply of the wrong type");
}

TEST_F(IpcChannelTest, QueuesWhenTheSocketIsFull) {
  constexpr int kCount = 80;
  Outcome o[kCount];
  for (int i = 0; i < kCount; ++i)
    channel_->request(1, std::string(60000, static_cast<char>('a' + i % 26)), 5000, record(&o[i]));
  // Far more than the socket buffer holds: the rest waits for EPOLLOUT.
  int answered = 0;
  ASSERT_TRUE(run_until([&] {
    for (;;) {
      auto f = recv_frame(worker_);
      if (!f.ok() || !f->has_value()) break;
      worker_reply(**f, std::to_string((*f)->payload.size()) + (*f)->payload.substr(0, 1));
      ++answered;
    }
    for (auto& out : o)
      if (out.calls == 0) return false;
    return true;
  }));
  EXPECT_EQ(answered, kCount);
  for (int i = 0; i < kCount; ++i) {
    EXPECT_TRUE(o[i].ok);
    EXPECT_EQ(o[i].payload, "60000" + std::string(1, static_cast<char>('a' + i % 26)));
  }
}

TEST_F(IpcChannelTest, RepliesCarryFds) {
  Outcome o;
  channel_->request(1, "give me a pipe", 2000, record(&o));
  Frame req = worker_recv();
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  worker_reply(req, "here", {p[0]});
  close(p[0]);
  close(p[1]);
  ASSERT_TRUE(run_until([&] { return o.calls > 0; }));
  EXPECT_TRUE(o.ok);
  EXPECT_EQ(o.fds, 1u);
}

TEST_F(IpcChannelTest, DestroyingTheChannelDropsCallbacks) {
  Outcome o;
  channel_->request(1, "r", 30, record(&o));
  channel_->fail("x");  // posts the failure
  channel_.reset();
  run_for(60);  // neither the posted failure nor the timer may run
  EXPECT_EQ(o.calls, 0);
}

TEST_F(IpcChannelTest, CallbackMayIssueTheNextRequest) {
  Outcome second;
  bool first_done = false;
  channel_->request(1, "first", 2000, [&](Result<Frame> r) {
    first_done = r.ok();
    channel_->request(1, "second", 2000, record(&second));
    EXPECT_EQ(second.calls, 0);
  });
  worker_reply(worker_recv(), "1");
  ASSERT_TRUE(run_until([&] { return first_done; }));
  worker_reply(worker_recv(), "2");
  ASSERT_TRUE(run_until([&] { return second.calls > 0; }));
  EXPECT_EQ(second.payload, "2");
}

}  // namespace
}  // namespace hearth::ipc
