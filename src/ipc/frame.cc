#include "ipc/frame.h"

#include <errno.h>
#include <poll.h>
#include <sodium.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>

#include "core/loop.h"
#include "storage/codec.h"

namespace hearth::ipc {
namespace {

// Room for more descriptors than a frame may carry, so that a peer sending
// a few too many has them all received, and closed, here (qemu-user, for
// one, does not close the ones a short buffer truncates); far too many
// arrive as MSG_CTRUNC, the kernel discarding the excess.
constexpr size_t kControlSize = CMSG_SPACE(sizeof(int) * kMaxFds * 4);

Error errno_error(const char* what, int err) {
  if (err == ECONNRESET || err == EPIPE) return make_error(std::string(kPeerClosed));
  return make_error(std::string(what) + ": " + strerror(err));
}

void close_all(std::vector<int>& fds) {
  for (int fd : fds)
    close(fd);
  fds.clear();
}

// Milliseconds left of `timeout_ms` started at `start` (-1 stays -1).
int remaining_ms(int timeout_ms, uint64_t start) {
  if (timeout_ms < 0) return -1;
  uint64_t elapsed = core::Loop::now_ms() - start;
  if (elapsed >= static_cast<uint64_t>(timeout_ms)) return 0;
  return static_cast<int>(static_cast<uint64_t>(timeout_ms) - elapsed);
}

// Waits for `events` on fd; false on timeout.
Result<bool> wait_for(int fd, short events, int timeout_ms, uint64_t start) {
  for (;;) {
    struct pollfd p {};
    p.fd = fd;
    p.events = events;
    int n = poll(&p, 1, remaining_ms(timeout_ms, start));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error("poll", errno);
    }
    // POLLHUP / POLLERR: the following recv/send reports what happened.
    return n > 0;
  }
}

}  // namespace

bool is_peer_closed(const Error& e) {
  return e.message == kPeerClosed;
}

void Frame::close_fds() {
  close_all(fds);
}

void Frame::wipe_payload() {
  wipe_string(payload);
}

void wipe_string(std::string& s) {
  s.resize(s.capacity());
  sodium_memzero(s.data(), s.size());
  s.clear();
}

Status send_frame(int fd, const Frame& frame, bool* would_block) {
  if (would_block) *would_block = false;
  if (frame.payload.size() > kMaxPayload) {
    return make_error("ipc: payload of " + std::to_string(frame.payload.size()) +
                      " bytes exceeds the maximum message size");
  }
  if (frame.fds.size() > kMaxFds) return make_error("ipc: too many fds in one frame");

  storage::Writer header;
  header.u16(kProtocolVersion).u16(frame.type).u32(frame.id);
  std::string_view h = header.view();

  struct iovec iov[2];
  iov[0].iov_base = const_cast<char*>(h.data());
  iov[0].iov_len = h.size();
  iov[1].iov_base = const_cast<char*>(frame.payload.data());
  iov[1].iov_len = frame.payload.size();

  struct msghdr msg {};
  msg.msg_iov = iov;
  msg.msg_iovlen = frame.payload.empty() ? 1 : 2;

  alignas(struct cmsghdr) std::array<unsigned char, kControlSize> control{};
  if (!frame.fds.empty()) {
    msg.msg_control = control.data();
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * frame.fds.size());
    struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * frame.fds.size());
    memcpy(CMSG_DATA(c), frame.fds.data(), sizeof(int) * frame.fds.size());
  }

  size_t total = h.size() + frame.payload.size();
  for (;;) {
    ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (would_block) *would_block = true;
        return make_error("ipc: send would block");
      }
      return errno_error("ipc: sendmsg", errno);
    }
    // SEQPACKET sends a record whole or not at all.
    if (static_cast<size_t>(n) != total) return make_error("ipc: short send");
    return {};
  }
}

Result<std::optional<Frame>> recv_frame(int fd) {
  // One buffer per process (each is single-threaded), sized for the largest
  // frame plus one byte so that an oversized record shows up as MSG_TRUNC
  // rather than fitting exactly. Not thread_local: glibc zero-fills a
  // program's static TLS block in every process at start, which made these
  // 64 KiB resident in all four processes whether used or not; in .bss only
  // the pages frames actually reach are.
  static std::array<char, kMaxMessage + 1> buf;
  alignas(struct cmsghdr) std::array<unsigned char, kControlSize> control{};

  struct iovec iov;
  iov.iov_base = buf.data();
  iov.iov_len = buf.size();
  struct msghdr msg {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();

  ssize_t n;
  for (;;) {
    n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n >= 0) break;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return std::optional<Frame>();
    return errno_error("ipc: recvmsg", errno);
  }

  // Take ownership of whatever fds arrived before looking at anything else,
  // so that every error below closes them.
  std::vector<int> fds;
  bool foreign_control = false;
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int received;
        memcpy(&received, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        fds.push_back(received);
      }
    } else {
      foreign_control = true;
    }
  }

  size_t len = static_cast<size_t>(n);
  auto fail = [&](std::string why) -> Result<std::optional<Frame>> {
    close_all(fds);
    sodium_memzero(buf.data(), len < buf.size() ? len : buf.size());
    return make_error("ipc: " + why);
  };

  if (n == 0) {
    close_all(fds);
    return make_error(std::string(kPeerClosed));
  }
  if (msg.msg_flags & MSG_TRUNC) return fail("message larger than the maximum size");
  if (msg.msg_flags & MSG_CTRUNC) return fail("too many fds (control data truncated)");
  if (foreign_control) return fail("unexpected control message");
  if (fds.size() > kMaxFds) return fail("too many fds");
  if (len > kMaxMessage) return fail("message larger than the maximum size");
  if (len < kHeaderSize) return fail("short header (" + std::to_string(len) + " bytes)");

  storage::Reader r(std::string_view(buf.data(), kHeaderSize));
  uint16_t version = 0;
  Frame frame;
  r.u16(&version);
  r.u16(&frame.type);
  r.u32(&frame.id);
  if (Status s = r.finish(); !s) return fail("bad header: " + s.error().message);
  if (version != kProtocolVersion) {
    return fail("protocol version " + std::to_string(version) + ", expected " +
                std::to_string(kProtocolVersion));
  }
  frame.payload.assign(buf.data() + kHeaderSize, len - kHeaderSize);
  sodium_memzero(buf.data(), len);
  frame.fds = std::move(fds);
  return std::optional<Frame>(std::move(frame));
}

Result<Frame> recv_frame_blocking(int fd, int timeout_ms) {
  uint64_t start = core::Loop::now_ms();
  for (;;) {
    auto got = recv_frame(fd);
    if (!got) return got.error();
    if (got->has_value()) return std::move(**got);
    auto ready = wait_for(fd, POLLIN, timeout_ms, start);
    if (!ready) return ready.error();
    if (!*ready) return make_error("ipc: timed out waiting for a message");
  }
}

Status send_frame_blocking(int fd, const Frame& frame, int timeout_ms) {
  uint64_t start = core::Loop::now_ms();
  for (;;) {
    bool would_block = false;
    Status sent = send_frame(fd, frame, &would_block);
    if (sent || !would_block) return sent;
    auto ready = wait_for(fd, POLLOUT, timeout_ms, start);
    if (!ready) return ready.error();
    if (!*ready) return make_error("ipc: timed out sending a message");
  }
}

Result<Frame> call(int fd, const Frame& request, int timeout_ms) {
  uint64_t start = core::Loop::now_ms();
  if (Status s = send_frame_blocking(fd, request, timeout_ms); !s) return s.error();
  auto reply = recv_frame_blocking(fd, remaining_ms(timeout_ms, start));
  if (!reply) return reply.error();
  if (reply->id != request.id) {
    reply->close_fds();
    reply->wipe_payload();
    return make_error("ipc: reply id " + std::to_string(reply->id) + " does not match request " +
                      std::to_string(request.id));
  }
  return std::move(reply.value());
}

}  // namespace hearth::ipc
