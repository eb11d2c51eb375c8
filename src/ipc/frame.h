// One IPC message on a socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC):
// SEQPACKET keeps message boundaries, so a frame is exactly one sendmsg /
// recvmsg and there is no stream reassembly. On the wire, all big-endian:
//
//   u16 protocol version (kProtocolVersion)
//   u16 message type     (MsgType, messages.h)
//   u32 request id       (a reply carries the id of its request)
//   payload              (typed, encoded with storage::Writer)
//
// at most kMaxMessage bytes in all, with up to kMaxFds descriptors attached
// as SCM_RIGHTS. Anything else on receipt (short, truncated, another version,
// too many fds) is an error, never a partial frame.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace hearth::ipc {

inline constexpr uint16_t kProtocolVersion = 1;
inline constexpr size_t kHeaderSize = 8;
inline constexpr size_t kMaxMessage = 65536;  // header included
inline constexpr size_t kMaxPayload = kMaxMessage - kHeaderSize;
inline constexpr size_t kMaxFds = 4;

// The error message of recv_frame() / send_frame() when the peer is gone
// (EOF, ECONNRESET, EPIPE), as opposed to a protocol violation.
inline constexpr std::string_view kPeerClosed = "peer closed";
bool is_peer_closed(const Error& e);

struct Frame {
  uint16_t type = 0;
  uint32_t id = 0;
  std::string payload;
  // Sending: borrowed (the kernel duplicates them). Received: owned by the
  // receiver, who must close them (close_fds()).
  std::vector<int> fds;

  void close_fds();
  // Zeroes the payload (it may carry a password) and empties it.
  void wipe_payload();
};

// Overwrites every byte the string owns (its whole capacity, so that also a
// short string's inline buffer) with zeros, then empties it.
void wipe_string(std::string& s);

// Sends one frame (sendmsg, MSG_NOSIGNAL). Refuses a frame over kMaxMessage
// or with more than kMaxFds fds. If the socket is non-blocking and full the
// frame is not sent, an error is returned and *would_block (if given) is set
// to true; on every other outcome it is set to false.
Status send_frame(int fd, const Frame& frame, bool* would_block = nullptr);

// Receives one frame without blocking (MSG_DONTWAIT): nullopt when nothing is
// waiting (EAGAIN). EOF / ECONNRESET are the error kPeerClosed; MSG_TRUNC,
// MSG_CTRUNC, a short header, another version or too many fds are errors.
// Received fds are close-on-exec and are closed on every error path.
Result<std::optional<Frame>> recv_frame(int fd);

// Sends one frame, waiting up to `timeout_ms` (-1: forever) for room if the
// socket is non-blocking and full.
Status send_frame_blocking(int fd, const Frame& frame, int timeout_ms);

// Waits up to `timeout_ms` (-1: forever) for one frame.
Result<Frame> recv_frame_blocking(int fd, int timeout_ms);

// A synchronous request: sends `request` and waits up to `timeout_ms` (-1:
// forever) for the reply with the same id. Any other frame is a protocol
// error (its fds are closed). For simple callers (the CLI, tests); the
// reactor uses Channel.
Result<Frame> call(int fd, const Frame& request, int timeout_ms);

}  // namespace hearth::ipc
