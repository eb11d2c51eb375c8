// Each test runs the sandboxed code in a forked child, because a seccomp
// filter cannot be removed. Suite names contain "Seccomp"/"Sandbox": the qemu
// cross-test excludes them (seccomp cannot load under qemu-user).
#include "sandbox/sandbox.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <lmdb.h>
#include <signal.h>
#include <sodium.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
// clang-format off
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/random.h>
// clang-format on

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "sandbox/policy_common.h"

namespace hearth::sandbox {
namespace {

// Runs body() in a child; returns the raw wait status.
template <class F>
int run_in_child(F&& body) {
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = fork();
  if (pid == 0) _exit(body());
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

std::string describe_status(int st) {
  if (WIFEXITED(st)) return "exit " + std::to_string(WEXITSTATUS(st));
  if (WIFSIGNALED(st)) return std::string("signal ") + strsignal(WTERMSIG(st));
  return "status " + std::to_string(st);
}

::testing::AssertionResult ExitedZero(int st) {
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "child: " << describe_status(st);
}

::testing::AssertionResult KilledBySigsys(int st) {
  if (WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "child: " << describe_status(st);
}

// /proc/self/status must be opened before the filter; procfs builds the text
// at the first read.
int open_status() {
  return open("/proc/self/status", O_RDONLY | O_CLOEXEC);
}
bool status_is_filtered(int fd) {
  char buf[8192];
  // lseek + read: every role has both (pread64 is LMDB's, not the keyholder's).
  if (lseek(fd, 0, SEEK_SET) != 0) return false;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  if (n <= 0) return false;
  buf[n] = '\0';
  return std::strstr(buf, "Seccomp:\t2\n") != nullptr && std::strstr(buf, "NoNewPrivs:\t1\n");
}

// A forbidden call in a child under role's enforcing filter.
template <class F>
int forbidden(Role role, F&& call) {
  return run_in_child([&] {
    if (!install(role, Mode::kEnforce).ok()) return 90;
    call();
    return 0;  // still alive: the filter let it through
  });
}

bool wolfssl_rng_works() {
  WC_RNG rng;
  if (wc_InitRng(&rng) != 0) return false;
  unsigned char block[32];
  bool ok = wc_RNG_GenerateBlock(&rng, block, sizeof block) == 0;
  wc_FreeRng(&rng);
  return ok;
}

std::string make_temp_dir() {
  char tmpl[] = "/tmp/hearth-sandbox-test-XXXXXX";
  const char* dir = mkdtemp(tmpl);
  return dir ? dir : "";
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

// --------------------------------------------------------------- reactor

TEST(SeccompReactor, NormalOperationWorks) {
  std::string dir = make_temp_dir();
  ASSERT_FALSE(dir.empty());
  write_file(dir + "/map", std::string(8192, 'm'));
  int st = run_in_child([&] {
    int status_fd = open_status();
    int file = open((dir + "/map").c_str(), O_RDONLY | O_CLOEXEC);
    int p[2];
    if (status_fd < 0 || file < 0 || pipe2(p, O_CLOEXEC) != 0) return 1;
    if (!install(Role::kReactor, Mode::kEnforce).ok()) return 2;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev) != 0) return 3;
    if (write(p[1], "x", 1) != 1) return 4;
    epoll_event out[4];
    char c = 0;
    if (epoll_wait(ep, out, 4, 1000) != 1 || read(p[0], &c, 1) != 1 || c != 'x') return 5;
    timespec ts{};
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0 || clock_gettime(CLOCK_REALTIME, &ts) != 0)
      return 6;
    unsigned char rnd[32];
    if (getrandom(rnd, sizeof rnd, 0) != static_cast<ssize_t>(sizeof rnd)) return 7;
    auto* big = static_cast<char*>(std::malloc(1 << 20));
    if (big == nullptr) return 8;
    std::memset(big, 1, 1 << 20);
    big = static_cast<char*>(std::realloc(big, 4 << 20));  // mremap of an mmapped chunk
    if (big == nullptr) return 9;
    std::free(big);
    void* m = mmap(nullptr, 8192, PROT_READ, MAP_SHARED, file, 0);
    if (m == MAP_FAILED || static_cast<char*>(m)[8191] != 'm' || munmap(m, 8192) != 0) return 10;
    int fl = fcntl(p[0], F_GETFL);
    if (fl < 0 || fcntl(p[0], F_SETFL, fl | O_NONBLOCK) != 0) return 11;
    struct stat sb {};
    if (fstat(file, &sb) != 0 || sb.st_size != 8192) return 12;
    // wolfSSL seeds a DRBG per TLS session from its own "/dev/urandom".
    if (!wolfssl_rng_works()) return 13;
    // Any other open is a file probe: EACCES, even of the same path.
    errno = 0;
    if (open("/etc/passwd", O_RDONLY) != -1 || errno != EACCES) return 14;
    errno = 0;
    if (open("/dev/urandom", O_RDONLY) != -1 || errno != EACCES) return 15;
    errno = 0;
    if (stat("/etc/passwd", &sb) != -1 || errno != EACCES) return 16;
    if (!status_is_filtered(status_fd)) return 17;
    close(ep);
    return 0;
  });
  EXPECT_TRUE(ExitedZero(st));
  std::remove((dir + "/map").c_str());
  rmdir(dir.c_str());
}

TEST(SeccompReactor, ExecveKills) {
  EXPECT_TRUE(KilledBySigsys(forbidden(Role::kReactor, [] {
    char* const argv[] = {const_cast<char*>("/bin/true"), nullptr};
    execve("/bin/true", argv, nullptr);
  })));
}

TEST(SeccompReactor, SocketKills) {
  EXPECT_TRUE(KilledBySigsys(forbidden(Role::kReactor, [] { socket(AF_INET, SOCK_STREAM, 0); })));
}

TEST(SeccompReactor, PtraceKills) {
  EXPECT_TRUE(KilledBySigsys(
      forbidden(Role::kReactor, [] { ptrace(PTRACE_TRACEME, 0, nullptr, nullptr); })));
}

TEST(SeccompReactor, ExecutableMemoryKills) {
  EXPECT_TRUE(KilledBySigsys(forbidden(Role::kReactor, [] {
    mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  })));
}

TEST(SeccompReactor, MprotectKills) {
  static char page[4096] __attribute__((aligned(4096)));
  EXPECT_TRUE(KilledBySigsys(
      forbidden(Role::kReactor, [] { mprotect(page, sizeof page, PROT_READ | PROT_WRITE); })));
}

TEST(SeccompReactor, ForkKills) {
  EXPECT_TRUE(KilledBySigsys(forbidden(Role::kReactor, [] {
    pid_t pid = fork();
    if (pid == 0) _exit(0);
  })));
}

// ------------------------------------------------------------- keyholder

TEST(SeccompKeyholder, NormalOperationWorks) {
  int st = run_in_child([] {
    int status_fd = open_status();
    int sp[2], p[2];
    if (status_fd < 0 || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0 ||
        pipe2(p, O_CLOEXEC) != 0)
      return 1;
    if (sodium_init() < 0 || !harden_process(true).ok()) return 2;
    if (!install(Role::kKeyholder, Mode::kEnforce).ok()) return 3;
    // A request and its answer on the channel, one with a descriptor attached.
    char buf[64];
    if (send(sp[0], "sign", 4, MSG_NOSIGNAL) != 4 || recv(sp[1], buf, sizeof buf, 0) != 4) return 4;
    msghdr msg{};
    iovec iov{const_cast<char*>("fd"), 2};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cm), &p[1], sizeof(int));
    if (sendmsg(sp[1], &msg, MSG_NOSIGNAL) != 2) return 5;
    msghdr in{};
    iovec iin{buf, sizeof buf};
    alignas(cmsghdr) char cin[CMSG_SPACE(sizeof(int))] = {};
    in.msg_iov = &iin;
    in.msg_iovlen = 1;
    in.msg_control = cin;
    in.msg_controllen = sizeof cin;
    if (recvmsg(sp[0], &in, MSG_CMSG_CLOEXEC) != 2 || CMSG_FIRSTHDR(&in) == nullptr) return 6;
    unsigned char rnd[32];
    if (getrandom(rnd, sizeof rnd, 0) != static_cast<ssize_t>(sizeof rnd)) return 7;
    void* key = sodium_malloc(64);  // guard pages: mprotect
    if (key == nullptr) return 8;
    sodium_free(key);
    auto* big = static_cast<char*>(std::malloc(1 << 20));
    if (big == nullptr) return 9;
    std::free(big);
    if (!wolfssl_rng_works()) return 10;
    errno = 0;
    if (open("/etc/passwd", O_RDONLY) != -1 || errno != EACCES) return 11;
    if (!status_is_filtered(status_fd)) return 12;
    return 0;
  });
  EXPECT_TRUE(ExitedZero(st));
}

TEST(SeccompKeyholder, SocketKills) {
  EXPECT_TRUE(KilledBySigsys(forbidden(Role::kKeyholder, [] { socket(AF_INET, SOCK_STREAM, 0); })));
}

TEST(SeccompKeyholder, ExecveKills) {
  EXPECT_TRUE(KilledBySigsys(forbidden(Role::kKeyholder, [] {
    char* const argv[] = {const_cast<char*>("/bin/sh"), nullptr};
    execve("/bin/sh", argv, nullptr);
  })));
}

TEST(SeccompKeyholder, AcceptKills) {
  EXPECT_TRUE(KilledBySigsys(forbidden(Role::kKeyholder, [] { accept4(0, nullptr, nullptr, 0); })));
}

// ------------------------------------------------------------------ auth

TEST(SeccompAuth, LmdbReadWriteWorks) {
  std::string dir = make_temp_dir();
  ASSERT_FALSE(dir.empty());
  std::string path = dir + "/accounts.mdb";
  int st = run_in_child([&] {
    int status_fd = open_status();
    MDB_env* env = nullptr;
    if (status_fd < 0 || mdb_env_create(&env) != 0 || mdb_env_set_mapsize(env, 1 << 20) != 0 ||
        mdb_env_open(env, path.c_str(), MDB_NOSUBDIR | MDB_NOTLS, 0600) != 0)
      return 1;
    if (sodium_init() < 0 || !harden_process(true).ok()) return 2;
    if (!install(Role::kAuth, Mode::kEnforce).ok()) return 3;
    for (int round = 0; round < 3; ++round) {
      MDB_txn* txn = nullptr;
      MDB_dbi dbi;
      if (mdb_txn_begin(env, nullptr, 0, &txn) != 0 || mdb_dbi_open(txn, nullptr, 0, &dbi) != 0)
        return 4;
      std::string k = "alice" + std::to_string(round), v(2000, 'v');
      MDB_val key{k.size(), k.data()}, val{v.size(), v.data()};
      if (mdb_put(txn, dbi, &key, &val, 0) != 0 || mdb_txn_commit(txn) != 0) return 5;
      if (mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn) != 0) return 6;
      MDB_val got{};
      if (mdb_get(txn, dbi, &key, &got) != 0 || got.mv_size != v.size()) return 7;
      mdb_txn_abort(txn);
    }
    // Growing the map (MDB_MAP_FULL handling) re-maps the file.
    if (mdb_env_set_mapsize(env, 2 << 20) != 0) return 8;
    int dead = -1;
    if (mdb_reader_check(env, &dead) != 0) return 9;
    void* secret = sodium_malloc(32);
    if (secret == nullptr) return 10;
    sodium_free(secret);
    errno = 0;
    if (open("/etc/passwd", O_RDONLY) != -1 || errno != EACCES) return 11;
    if (!status_is_filtered(status_fd)) return 12;
    mdb_env_close(env);
    return 0;
  });
  EXPECT_TRUE(ExitedZero(st));
  std::remove(path.c_str());
  std::remove((path + "-lock").c_str());
  rmdir(dir.c_str());
}

TEST(SeccompAuth, SocketKills) {
  EXPECT_TRUE(KilledBySigsys(forbidden(Role::kAuth, [] { socket(AF_UNIX, SOCK_STREAM, 0); })));
}

TEST(SeccompAuth, PtraceKills) {
  EXPECT_TRUE(
      KilledBySigsys(forbidden(Role::kAuth, [] { ptrace(PTRACE_TRACEME, 0, nullptr, nullptr); })));
}

TEST(SeccompAuth, ConnectKills) {
  EXPECT_TRUE(KilledBySigsys(forbidden(Role::kAuth, [] { connect(0, nullptr, 0); })));
}

// -------------------------------------------------------------- log mode

TEST(SeccompLogMode, ForbiddenCallIsLoggedNotKilled) {
  int st = run_in_child([] {
    int status_fd = open_status();
    if (!install(Role::kKeyholder, Mode::kLog).ok()) return 1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return 2;
    close(fd);
    if (!status_is_filtered(status_fd)) return 3;
    return 0;
  });
  EXPECT_TRUE(ExitedZero(st));
}

// ----------------------------------------------------- the tables per arch

struct ArchCase {
  std::uint32_t arch;
  const char* name;
};

bool has(const std::vector<std::string>& list, const std::string& name) {
  for (const auto& s : list)
    if (s == name) return true;
  return false;
}

TEST(SeccompTables, BuildForEachArchitecture) {
  const ArchCase arches[] = {
      {SCMP_ARCH_X86_64, "x86_64"}, {SCMP_ARCH_AARCH64, "aarch64"}, {SCMP_ARCH_ARM, "arm"}};
  PolicyContext pc;
  pc.self_pid = 1234;
  pc.urandom_paths = {0x10000};
  for (const auto& a : arches) {
    for (Role role : {Role::kReactor, Role::kKeyholder, Role::kAuth}) {
      SCOPED_TRACE(std::string(a.name) + " " + role_name(role));
      scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
      ASSERT_NE(ctx, nullptr);
      if (a.arch != seccomp_arch_native()) {
        ASSERT_EQ(seccomp_arch_add(ctx, a.arch), 0);
        ASSERT_EQ(seccomp_arch_remove(ctx, seccomp_arch_native()), 0);
      }
      Builder b(ctx, a.arch);
      add_role_rules(b, role, pc);
      EXPECT_TRUE(b.status().ok()) << b.status().error().message;
      int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
      EXPECT_EQ(seccomp_export_bpf(ctx, null_fd), 0);
      close(null_fd);
      seccomp_release(ctx);
      for (const char* never :
           {"socket", "connect", "bind", "listen", "execve", "execveat", "ptrace", "clone",
            "clone3", "fork", "vfork", "ioctl", "process_vm_writev", "unlink", "unlinkat", "kill"})
        EXPECT_FALSE(has(b.allowed(), never)) << never;
      EXPECT_TRUE(has(b.allowed(), "openat"));  // the wolfSSL seed rule
      EXPECT_TRUE(has(b.failing(), "openat"));  // every other open
      EXPECT_EQ(has(b.allowed(), "accept4"), role == Role::kReactor);
      EXPECT_EQ(has(b.allowed(), "pwrite64"), role != Role::kKeyholder);
      EXPECT_EQ(has(b.allowed(), "mprotect"), role != Role::kReactor);
    }
  }
}

TEST(SeccompTables, ArchitectureSpecificNames) {
  PolicyContext pc;
  pc.urandom_paths = {0x10000};
  Builder arm(nullptr, SCMP_ARCH_ARM), a64(nullptr, SCMP_ARCH_AARCH64),
      x64(nullptr, SCMP_ARCH_X86_64);
  add_role_rules(arm, Role::kReactor, pc);
  add_role_rules(a64, Role::kReactor, pc);
  add_role_rules(x64, Role::kReactor, pc);
  for (const char* n : {"mmap2", "_llseek", "fcntl64", "clock_gettime64", "send", "recv"})
    EXPECT_TRUE(has(arm.allowed(), n)) << n;
  EXPECT_TRUE(has(arm.skipped(), "mmap"));
  EXPECT_TRUE(has(a64.skipped(), "open"));
  EXPECT_TRUE(has(a64.skipped(), "epoll_wait"));
  EXPECT_TRUE(has(a64.allowed(), "epoll_pwait"));
  EXPECT_TRUE(has(a64.allowed(), "newfstatat"));
  EXPECT_TRUE(has(x64.allowed(), "mmap"));
  EXPECT_TRUE(has(x64.skipped(), "mmap2"));
  EXPECT_TRUE(has(x64.failing(), "open"));
}

TEST(SeccompTables, FindsWolfsslUrandomString) {
  PolicyContext pc = current_policy_context();
  ASSERT_EQ(pc.urandom_paths.size(), 1u);
  EXPECT_STREQ(reinterpret_cast<const char*>(pc.urandom_paths[0]), "/dev/urandom");
  EXPECT_EQ(pc.self_pid, static_cast<std::uint64_t>(getpid()));
}

TEST(SeccompTables, DescribeNamesTheAllowList) {
  std::string reactor = describe(Role::kReactor);
  std::string keyholder = describe(Role::kKeyholder);
  EXPECT_EQ(reactor.rfind("reactor: seccomp allows ", 0), 0u) << reactor;
  EXPECT_NE(reactor.find(" accept4"), std::string::npos);
  EXPECT_EQ(keyholder.find("accept4"), std::string::npos) << keyholder;
  for (const std::string& line : {reactor, keyholder, describe(Role::kAuth)}) {
    EXPECT_EQ(line.find("socket"), std::string::npos) << line;
    EXPECT_EQ(line.find("execve"), std::string::npos) << line;
    EXPECT_NE(line.find("EACCES"), std::string::npos) << line;
  }
}

// --------------------------------------------------------------- hygiene

TEST(SandboxHarden, SecretHoldersDumpNothing) {
  int st = run_in_child([] {
    if (prctl(PR_GET_DUMPABLE) != 1) return 1;  // the starting point
    if (!harden_process(true).ok()) return 2;
    rlimit rl{};
    if (getrlimit(RLIMIT_CORE, &rl) != 0 || rl.rlim_cur != 0 || rl.rlim_max != 0) return 3;
    if (prctl(PR_GET_DUMPABLE) != 0) return 4;
    return 0;
  });
  EXPECT_TRUE(ExitedZero(st));
}

TEST(SandboxHarden, ReactorKeepsItsSettings) {
  int st = run_in_child([] {
    rlimit before{};
    getrlimit(RLIMIT_CORE, &before);
    if (!harden_process(false).ok()) return 1;
    rlimit after{};
    getrlimit(RLIMIT_CORE, &after);
    if (after.rlim_cur != before.rlim_cur || prctl(PR_GET_DUMPABLE) != 1) return 2;
    return 0;
  });
  EXPECT_TRUE(ExitedZero(st));
}

TEST(SandboxHarden, DontDumpMarksThePagesAndReleaseWipes) {
  int st = run_in_child([] {
    const long page = sysconf(_SC_PAGESIZE);
    auto* secret = static_cast<unsigned char*>(std::aligned_alloc(page, 2 * page));
    if (secret == nullptr) return 1;
    std::memset(secret, 0xA5, 2 * page);
    dont_dump(secret + 10, 100);
    auto addr = reinterpret_cast<std::uintptr_t>(secret);
    std::ifstream smaps("/proc/self/smaps");
    std::string line;
    bool in_range = false, marked = false;
    while (std::getline(smaps, line)) {
      unsigned long lo = 0, hi = 0;
      if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2 && line.find(':') > 8) {
        in_range = addr >= lo && addr < hi;
      } else if (in_range && line.rfind("VmFlags:", 0) == 0) {
        marked = line.find(" dd") != std::string::npos;
        break;
      }
    }
    if (!marked) return 2;
    release_dont_dump(secret + 10, 100);
    for (int i = 10; i < 110; ++i)
      if (secret[i] != 0) return 3;
    if (secret[9] != 0xA5 || secret[110] != 0xA5) return 4;
    std::free(secret);
    return 0;
  });
  EXPECT_TRUE(ExitedZero(st));
}

TEST(SandboxLandlock, RestrictsOrSaysUnsupported) {
  std::string dir = make_temp_dir();
  ASSERT_FALSE(dir.empty());
  std::string allowed = dir + "/allowed", other = dir + "/other";
  ASSERT_EQ(mkdir(allowed.c_str(), 0700), 0);
  ASSERT_EQ(mkdir(other.c_str(), 0700), 0);
  write_file(allowed + "/f", "a");
  write_file(other + "/f", "o");
  const int abi = landlock_abi_version();
  int st = run_in_child([&] {
    Status s = landlock_restrict({{allowed, false}});
    if (!s.ok()) {
      // Unsupported is only acceptable where the kernel has no Landlock.
      return abi == 0 && s.error().message.rfind("unsupported", 0) == 0 ? 0 : 10;
    }
    if (abi == 0) return 11;
    int fd = open((allowed + "/f").c_str(), O_RDONLY);
    if (fd < 0) return 12;
    close(fd);
    errno = 0;
    if (open((other + "/f").c_str(), O_RDONLY) != -1 || errno != EACCES) return 13;
    errno = 0;
    if (open((allowed + "/f").c_str(), O_WRONLY) != -1 || errno != EACCES) return 14;
    errno = 0;
    if (open((allowed + "/new").c_str(), O_WRONLY | O_CREAT, 0600) != -1 || errno != EACCES)
      return 15;
    return 0;
  });
  EXPECT_TRUE(ExitedZero(st)) << "landlock ABI " << abi;
  std::remove((allowed + "/f").c_str());
  std::remove((other + "/f").c_str());
  rmdir(allowed.c_str());
  rmdir(other.c_str());
  rmdir(dir.c_str());
}

}  // namespace
}  // namespace hearth::sandbox
