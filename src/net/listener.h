// Listening sockets: bound once, accepted non-blocking by the loop.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/loop.h"
#include "core/result.h"

namespace hearth::net {

class Listener : public core::IoHandler {
 public:
  // Called with a non-blocking, close-on-exec client socket and the peer's
  // printable address.
  using AcceptFn = std::function<void(int fd, std::string peer)>;

  ~Listener() override;
  // Binds `address` ("*" = all, dual-stack) on `port` (0 = ephemeral).
  static Result<std::unique_ptr<Listener>> bind(const std::string& address, uint16_t port);

  // Takes over a socket the monitor bound (listening, any family).
  static Result<std::unique_ptr<Listener>> adopt(int fd);

  Status start(core::Loop* loop, AcceptFn fn);
  int fd() const { return fd_; }
  uint16_t port() const { return port_; }
  const std::string& address() const { return address_; }  // as bound, printable
  void on_io(uint32_t events) override;
  // Accepting is paused for kPauseMs after running out of descriptors.
  bool paused() const { return paused_; }
  static constexpr uint64_t kPauseMs = 250;

 private:
  Listener() = default;
  // Owns `fd`, a bound listening socket; reads back its address and port.
  static std::unique_ptr<Listener> wrap(int fd);
  int fd_ = -1;
  uint16_t port_ = 0;
  std::string address_;
  core::Loop* loop_ = nullptr;
  AcceptFn fn_;
  bool paused_ = false;
  core::Loop::TimerId pause_timer_ = 0;
  void pause();
};

// "1.2.3.4:5" / "[::1]:5"
std::string format_sockaddr(const void* sa, unsigned len);

}  // namespace hearth::net
