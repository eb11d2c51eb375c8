#include "net/listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"

namespace hearth::net {

std::string format_sockaddr(const void* sa_ptr, unsigned len) {
  const auto* sa = static_cast<const struct sockaddr*>(sa_ptr);
  char host[INET6_ADDRSTRLEN] = "?";
  unsigned port = 0;
  if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
    const auto* in = static_cast<const struct sockaddr_in*>(sa_ptr);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    port = ntohs(in->sin_port);
    return std::string(host) + ":" + std::to_string(port);
  }
  if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
    const auto* in6 = static_cast<const struct sockaddr_in6*>(sa_ptr);
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    port = ntohs(in6->sin6_port);
    return "[" + std::string(host) + "]:" + std::to_string(port);
  }
  return "?";
}

Listener::~Listener() {
  if (pause_timer_) loop_->cancel_timer(pause_timer_);
  if (fd_ >= 0) {
    if (loop_) loop_->remove(fd_);
    close(fd_);
  }
}

Result<std::unique_ptr<Listener>> Listener::bind(const std::string& address, uint16_t port) {
  struct sockaddr_storage ss {};
  socklen_t len = 0;
  bool v6only = true;
  if (address == "*") {
    auto* in6 = reinterpret_cast<struct sockaddr_in6*>(&ss);
    in6->sin6_family = AF_INET6;
    in6->sin6_addr = in6addr_any;
    in6->sin6_port = htons(port);
    len = sizeof *in6;
    v6only = false;  // dual-stack
  } else {
    auto* in = reinterpret_cast<struct sockaddr_in*>(&ss);
    auto* in6 = reinterpret_cast<struct sockaddr_in6*>(&ss);
    if (inet_pton(AF_INET, address.c_str(), &in->sin_addr) == 1) {
      in->sin_family = AF_INET;
      in->sin_port = htons(port);
      len = sizeof *in;
    } else if (inet_pton(AF_INET6, address.c_str(), &in6->sin6_addr) == 1) {
      in6->sin6_family = AF_INET6;
      in6->sin6_port = htons(port);
      len = sizeof *in6;
    } else {
      return make_error("cannot listen on '" + address + "': not an IP address");
    }
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0 && address == "*" && errno == EAFNOSUPPORT) {
    // No IPv6 in this kernel: fall back to IPv4 any.
    auto* in = reinterpret_cast<struct sockaddr_in*>(&ss);
    memset(&ss, 0, sizeof ss);
    in->sin_family = AF_INET;
    in->sin_addr.s_addr = htonl(INADDR_ANY);
    in->sin_port = htons(port);
    len = sizeof *in;
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  }
  if (fd < 0) return make_error(std::string("socket: ") + strerror(errno));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (ss.ss_family == AF_INET6) {
    int v = v6only ? 1 : 0;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, sizeof v);
  }
  if (::bind(fd, reinterpret_cast<struct sockaddr*>(&ss), len) != 0) {
    int e = errno;
    close(fd);
    std::string where = format_sockaddr(&ss, len);
    if (e == EADDRINUSE)
      return make_error("cannot listen on " + where +
                        ": address in use; stop the other server or change the port in the INI");
    if (e == EACCES)
      return make_error("cannot listen on " + where +
                        ": permission denied; ports below 1024 need root or CAP_NET_BIND_SERVICE");
    return make_error("cannot listen on " + where + ": " + strerror(e));
  }
  if (listen(fd, 128) != 0) {
    int e = errno;
    close(fd);
    return make_error(std::string("listen: ") + strerror(e));
  }
  return Listener::wrap(fd);
}

std::unique_ptr<Listener> Listener::wrap(int fd) {
  std::unique_ptr<Listener> l(new Listener());
  l->fd_ = fd;
  struct sockaddr_storage bound {};
  socklen_t blen = sizeof bound;
  getsockname(fd, reinterpret_cast<struct sockaddr*>(&bound), &blen);
  l->address_ = format_sockaddr(&bound, blen);
  l->port_ = bound.ss_family == AF_INET
                 ? ntohs(reinterpret_cast<struct sockaddr_in*>(&bound)->sin_port)
                 : ntohs(reinterpret_cast<struct sockaddr_in6*>(&bound)->sin6_port);
  return l;
}

Result<std::unique_ptr<Listener>> Listener::adopt(int fd) {
  int listening = 0;
  socklen_t optlen = sizeof listening;
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &optlen) != 0 || !listening)
    return make_error("descriptor " + std::to_string(fd) + " is not a listening socket");
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0 ||
      fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
    return make_error(std::string("fcntl on a listening socket: ") + strerror(errno));
  return Listener::wrap(fd);
}

Status Listener::start(core::Loop* loop, AcceptFn fn) {
  loop_ = loop;
  fn_ = std::move(fn);
  return loop_->add(fd_, EPOLLIN, this);
}

void Listener::pause() {
  if (paused_) return;
  paused_ = true;
  loop_->remove(fd_);
  pause_timer_ = loop_->add_timer(kPauseMs, [this] {
    pause_timer_ = 0;
    paused_ = false;
    (void)loop_->add(fd_, EPOLLIN, this);
  });
}

void Listener::on_io(uint32_t) {
  for (int i = 0; i < 64; ++i) {
    struct sockaddr_storage ss {};
    socklen_t len = sizeof ss;
    int fd =
        accept4(fd_, reinterpret_cast<struct sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      HEARTH_WARN("net", "accept on %s: %s", address_.c_str(), strerror(errno));
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors or memory: the pending connection stays in the
        // backlog and epoll would report it again at once. Stop listening for
        // a moment instead of spinning (connections wait in the backlog).
        pause();
      }
      return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fn_(fd, format_sockaddr(&ss, len));
  }
}

}  // namespace hearth::net
