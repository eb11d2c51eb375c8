// The rule builder and the rules every role shares. Each policy file is a
// table: one line per syscall with the reason it is allowed. Names are
// resolved for the filter's architecture; a name that architecture lacks
// (open on aarch64, mmap2 on x86-64) is skipped, so one table serves x86-64,
// aarch64 and 32-bit ARM.
#pragma once

#include <fcntl.h>
#include <seccomp.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "core/result.h"
#include "sandbox/sandbox.h"

namespace hearth::sandbox {

// Facts about this process the rules compare against, found before loading.
struct PolicyContext {
  std::uint64_t self_pid = 0;
  // Addresses of the read-only "/dev/urandom" string wolfSSL passes to
  // open() when it seeds a DRBG (every new TLS session: wc_InitRng). Exactly
  // one address: openat is allowed for that pointer only, see policy_common.
  std::vector<std::uint64_t> urandom_paths;
};

inline scmp_arg_cmp arg_eq(unsigned arg, std::uint64_t value) {
  return scmp_arg_cmp{arg, SCMP_CMP_EQ, value, 0};
}
inline scmp_arg_cmp arg_ne(unsigned arg, std::uint64_t value) {
  return scmp_arg_cmp{arg, SCMP_CMP_NE, value, 0};
}
// (argument & mask) == value
inline scmp_arg_cmp arg_masked(unsigned arg, std::uint64_t mask, std::uint64_t value) {
  return scmp_arg_cmp{arg, SCMP_CMP_MASKED_EQ, mask, value};
}

class Builder {
 public:
  // ctx may be null: the builder then only records names (describe()).
  Builder(scmp_filter_ctx ctx, std::uint32_t arch) : ctx_(ctx), arch_(arch) {}

  void allow(const char* name, const char* why) { add(SCMP_ACT_ALLOW, name, {}, why); }
  void allow_if(const char* name, std::initializer_list<scmp_arg_cmp> args, const char* why) {
    add(SCMP_ACT_ALLOW, name, args, why);
  }
  void fail(const char* name, int err, const char* why) {
    add(SCMP_ACT_ERRNO(static_cast<std::uint32_t>(err)), name, {}, why);
  }
  void fail_if(const char* name, int err, std::initializer_list<scmp_arg_cmp> args,
               const char* why) {
    add(SCMP_ACT_ERRNO(static_cast<std::uint32_t>(err)), name, args, why);
  }

  std::uint32_t arch() const { return arch_; }
  const Status& status() const { return status_; }
  // Names with at least one allow rule / errno rule on this architecture.
  const std::vector<std::string>& allowed() const { return allowed_; }
  const std::vector<std::string>& failing() const { return failing_; }
  // Names in the tables that this architecture does not have.
  const std::vector<std::string>& skipped() const { return skipped_; }

 private:
  void add(std::uint32_t action, const char* name, std::initializer_list<scmp_arg_cmp> args,
           const char* why);

  scmp_filter_ctx ctx_;
  std::uint32_t arch_;
  Status status_;
  std::vector<std::string> allowed_, failing_, skipped_;
};

void add_reactor_rules(Builder& b, const PolicyContext& pc);
void add_keyholder_rules(Builder& b, const PolicyContext& pc);
void add_auth_rules(Builder& b, const PolicyContext& pc);

// The whole policy of a role (common + role rules) into b.
void add_role_rules(Builder& b, Role role, const PolicyContext& pc);

// What install() computes before loading: pid, the urandom literal.
PolicyContext current_policy_context();

// ---------------------------------------------------------------------------
// Rules every role shares. After start-up no role opens a file, creates a
// socket, forks or executes anything; all of those kill (the default action).

inline void add_common_rules(Builder& b, const PolicyContext& pc) {
  // Memory. No executable mappings and no caller-chosen addresses: together
  // with the reactor's missing mprotect this keeps read-only data read-only.
  b.allow("brk", "malloc grows the main heap");
  b.allow_if("mmap", {arg_eq(0, 0), arg_masked(2, PROT_EXEC, 0)},
             "malloc of large blocks, LMDB map (re)size; no exec, kernel-chosen address");
  b.allow_if("mmap2", {arg_eq(0, 0), arg_masked(2, PROT_EXEC, 0)},
             "mmap on 32-bit ABIs, same limits");
  b.allow("munmap", "free of large blocks, LMDB map resize");
  b.allow_if("mremap", {arg_masked(3, MREMAP_FIXED, 0)},
             "realloc of large blocks; never onto a chosen address");
  b.allow("madvise", "glibc returns freed pages; MADV_DONTDUMP on secrets");
  b.allow("mlock", "sodium_mlock keeps secrets out of swap");
  b.allow("munlock", "sodium_munlock before freeing them");

  // Time (normally the vDSO; the syscall is its fallback).
  b.allow("clock_gettime", "timers, log timestamps");
  b.allow("clock_gettime64", "clock_gettime with 64-bit time on 32-bit ABIs");
  b.allow("gettimeofday", "vDSO fallback of old callers");

  // Signals and exit.
  b.allow("rt_sigreturn", "return from a signal handler");
  b.allow("sigreturn", "the same on 32-bit ARM");
  b.allow("rt_sigprocmask", "glibc blocks signals around abort() and in signalfd set-up");
  b.allow("sigprocmask", "the same on 32-bit ABIs");
  b.allow("rt_sigaction", "abort() restores SIGABRT's default action");
  b.allow("restart_syscall", "kernel restarts an interrupted call");
  b.allow("exit", "thread exit");
  b.allow("exit_group", "process exit");
  b.allow_if("tgkill", {arg_eq(0, pc.self_pid)}, "abort()/raise() signal this process only");
  b.allow("getpid", "LMDB checks the environment's owner; raise()");
  b.allow("gettid", "raise()");

  // Locks and randomness.
  b.allow("futex", "glibc locks; LMDB's robust mutexes in the shared lock file");
  b.allow("futex_time64", "futex with 64-bit time on 32-bit ABIs");
  b.allow("getrandom", "libsodium and wolfSSL randomness, SCRAM nonces");

  // I/O on descriptors opened before the filter or received over IPC.
  b.allow("read", "sockets, pipes, signalfd, /dev/urandom seed");
  b.allow("readv", "scatter reads");
  b.allow("write", "sockets, pipes, log to stderr");
  b.allow("writev", "gather writes; LMDB writes several pages at once");
  b.allow("close", "close descriptors");
  b.allow("recvmsg", "IPC frames with SCM_RIGHTS");
  b.allow("sendmsg", "IPC frames with SCM_RIGHTS");
  b.allow("recvfrom", "recv() on 64-bit ABIs");
  b.allow("sendto", "send() on 64-bit ABIs (MSG_NOSIGNAL)");
  b.allow("recv", "recv() on 32-bit ARM");
  b.allow("send", "send() on 32-bit ARM");
  b.allow("lseek", "LMDB positions writev");
  b.allow("_llseek", "lseek on 32-bit ABIs");
  for (const char* fcntl_name : {"fcntl", "fcntl64"}) {
    b.allow_if(fcntl_name, {arg_eq(1, F_GETFL)}, "read O_NONBLOCK");
    b.allow_if(fcntl_name, {arg_eq(1, F_SETFL)}, "set O_NONBLOCK on a received descriptor");
    b.allow_if(fcntl_name, {arg_eq(1, F_GETFD)}, "read FD_CLOEXEC");
    b.allow_if(fcntl_name, {arg_eq(1, F_SETFD)}, "set FD_CLOEXEC on a received descriptor");
  }
  b.allow("fstat", "fstat of an open descriptor (stdio, LMDB)");
  b.allow("fstat64", "the same on 32-bit ABIs");
  b.allow_if("newfstatat", {arg_masked(3, AT_EMPTY_PATH, AT_EMPTY_PATH)},
             "glibc's fstat(fd) is fstatat(fd, \"\", AT_EMPTY_PATH)");
  b.allow_if("fstatat64", {arg_masked(3, AT_EMPTY_PATH, AT_EMPTY_PATH)}, "the same on 32-bit ABIs");
  b.allow_if("statx", {arg_masked(2, AT_EMPTY_PATH, AT_EMPTY_PATH)},
             "glibc's fstat(fd) on 32-bit ABIs with 64-bit time");
  b.allow("epoll_create1", "an event loop created after entering the sandbox");
  b.allow("epoll_ctl", "event loop registrations");
  b.allow("epoll_wait", "event loop");
  b.allow("epoll_pwait", "event loop (aarch64 has no epoll_wait)");
  b.allow("epoll_pwait2", "event loop with a timespec timeout");
  b.allow("poll", "waiting for one IPC descriptor");
  b.allow("ppoll", "poll on ABIs without poll");
  b.allow("ppoll_time64", "ppoll with 64-bit time on 32-bit ABIs");

  // wolfSSL seeds every new DRBG (one per TLS session) with
  // open("/dev/urandom"); the Debian build has no getrandom() seeding. A
  // filter cannot read a path, so openat is allowed only with the address of
  // wolfSSL's own read-only "/dev/urandom" string, read-only. Any other open
  // is a file probe and fails with EACCES.
  if (pc.urandom_paths.size() == 1) {
    b.allow_if("openat", {arg_eq(1, pc.urandom_paths[0]), arg_masked(2, O_ACCMODE, O_RDONLY)},
               "wolfSSL DRBG seed: only wolfSSL's own \"/dev/urandom\" string, read-only");
    b.fail_if("openat", EACCES, {arg_ne(1, pc.urandom_paths[0])}, "file probe");
  } else {
    for (std::uint64_t path : pc.urandom_paths)
      b.allow_if("openat", {arg_eq(1, path), arg_masked(2, O_ACCMODE, O_RDONLY)},
                 "wolfSSL DRBG seed (several copies of the string: other opens kill)");
    if (pc.urandom_paths.empty()) b.fail("openat", EACCES, "file probe");
  }
  // File probes: fail softly so a library that looks for a file degrades.
  b.fail("open", EACCES, "file probe");
  b.fail("openat2", EACCES, "file probe");
  b.fail("access", EACCES, "file probe");
  b.fail("faccessat", EACCES, "file probe");
  b.fail("faccessat2", EACCES, "file probe");
  b.fail("stat", EACCES, "file probe");
  b.fail("lstat", EACCES, "file probe");
  b.fail("stat64", EACCES, "file probe");
  b.fail("lstat64", EACCES, "file probe");
  b.fail_if("newfstatat", EACCES, {arg_masked(3, AT_EMPTY_PATH, 0)}, "file probe");
  b.fail_if("fstatat64", EACCES, {arg_masked(3, AT_EMPTY_PATH, 0)}, "file probe");
  b.fail_if("statx", EACCES, {arg_masked(2, AT_EMPTY_PATH, 0)}, "file probe");
  b.fail("readlink", EACCES, "file probe");
  b.fail("readlinkat", EACCES, "file probe");
}

inline void add_lmdb_rules(Builder& b) {
  b.allow("pread64", "LMDB reads meta pages");
  b.allow("pwrite64", "LMDB writes pages and meta pages");
  b.allow("fdatasync", "LMDB commit: data and meta on disk before the reply");
  b.allow("fsync", "LMDB commit on file systems without fdatasync");
  b.allow("msync", "LMDB commit of a writable map");
  b.allow("ftruncate", "LMDB sizes the lock file / grows the map");
  b.allow("ftruncate64", "the same on 32-bit ABIs");
  for (const char* fcntl_name : {"fcntl", "fcntl64"}) {
    for (int cmd : {F_GETLK, F_SETLK, F_SETLKW, F_GETLK64, F_SETLK64, F_SETLKW64})
      b.allow_if(fcntl_name, {arg_eq(1, static_cast<std::uint64_t>(cmd))},
                 "LMDB reader-slot pid locks and the writer check");
  }
}

}  // namespace hearth::sandbox
