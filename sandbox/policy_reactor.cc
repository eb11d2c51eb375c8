// The reactor: network I/O, TLS record layer, XML, routing, modules and
// data.mdb. After start-up it accepts on the listening sockets the monitor
// passed, reads and writes sockets and IPC channels, and commits LMDB. It
// creates no socket (no socket/connect/bind/listen), opens no file, and has
// no mprotect: with mmap limited to kernel-chosen, non-executable addresses,
// read-only data (such as wolfSSL's "/dev/urandom" string the openat rule
// trusts) stays read-only.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "sandbox/policy_common.h"

namespace hearth::sandbox {

void add_reactor_rules(Builder& b, const PolicyContext& pc) {
  add_common_rules(b, pc);
  add_lmdb_rules(b);  // data.mdb
  b.allow("accept4", "accept c2s/s2s connections on the inherited listening sockets");
  b.allow_if("setsockopt", {arg_eq(1, IPPROTO_TCP)}, "TCP_NODELAY on accepted sockets");
  b.allow_if("setsockopt", {arg_eq(1, SOL_SOCKET)}, "SO_KEEPALIVE, buffer sizes");
  b.allow("getsockopt", "SO_ERROR of a socket");
  b.allow("getsockname", "local address of an accepted socket");
  b.allow("getpeername", "peer address for logs and per-IP limits");
  b.allow("shutdown", "half-close a TCP stream after </stream:stream>");
}

}  // namespace hearth::sandbox
