// install(), hygiene and Landlock. The per-role tables live in policy_*.cc,
// the shared rules in policy_common.h.
#include "sandbox/sandbox.h"

#include <fcntl.h>
#include <link.h>
#include <linux/landlock.h>
#include <seccomp.h>
#include <sodium.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
// clang-format off
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/random.h>
// clang-format on

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>

#include "sandbox/policy_common.h"

namespace hearth::sandbox {
namespace {

std::string errno_text(int err) {
  return std::strerror(err);
}

bool contains(const std::vector<std::string>& list, const char* name) {
  for (const auto& s : list)
    if (s == name) return true;
  return false;
}

const char* arch_name(std::uint32_t arch) {
  switch (arch) {
    case SCMP_ARCH_X86_64:
      return "x86_64";
    case SCMP_ARCH_AARCH64:
      return "aarch64";
    case SCMP_ARCH_ARM:
      return "arm";
    case SCMP_ARCH_X86:
      return "x86";
    default:
      return "native";
  }
}

// Finds every copy of "/dev/urandom\0" in the read-only segments of the
// object that contains wolfSSL's wc_InitRng (libwolfssl.so, or the binary
// when linked statically).
struct UrandomScan {
  std::uintptr_t anchor;
  std::string needle;
  std::vector<std::uint64_t> found;
};

int scan_object(dl_phdr_info* info, size_t, void* data) {
  auto* scan = static_cast<UrandomScan*>(data);
  bool holds_anchor = false;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD) continue;
    std::uintptr_t start = info->dlpi_addr + ph.p_vaddr;
    if (scan->anchor >= start && scan->anchor < start + ph.p_memsz) holds_anchor = true;
  }
  if (!holds_anchor) return 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || (ph.p_flags & PF_R) == 0 || (ph.p_flags & PF_W) != 0) continue;
    const char* begin = reinterpret_cast<const char*>(info->dlpi_addr + ph.p_vaddr);
    const char* end = begin + ph.p_filesz;
    const char* at = begin;
    while (at < end) {
      const void* hit =
          memmem(at, static_cast<size_t>(end - at), scan->needle.data(), scan->needle.size());
      if (hit == nullptr) break;
      scan->found.push_back(reinterpret_cast<std::uintptr_t>(hit));
      at = static_cast<const char*>(hit) + 1;
    }
  }
  return 1;
}

}  // namespace

void Builder::add(std::uint32_t action, const char* name, std::initializer_list<scmp_arg_cmp> args,
                  const char* why) {
  (void)why;  // the reason is for the reader of the table
  // Skip names this architecture lacks (libseccomp gives them negative
  // pseudo numbers): open on aarch64, mmap2 on x86-64.
  if (seccomp_syscall_resolve_name_arch(arch_, name) < 0) {
    if (!contains(skipped_, name)) skipped_.emplace_back(name);
    return;
  }
  auto& list = action == SCMP_ACT_ALLOW ? allowed_ : failing_;
  if (!contains(list, name)) list.emplace_back(name);
  if (ctx_ == nullptr || !status_.ok()) return;
  // libseccomp takes the native number and translates it by name for each
  // architecture in the filter.
  int nr = seccomp_syscall_resolve_name(name);
  int rc =
      seccomp_rule_add_array(ctx_, action, nr, static_cast<unsigned>(args.size()), args.begin());
  if (rc < 0)
    status_ = make_error(std::string("seccomp rule for ") + name + ": " + errno_text(-rc));
}

void add_role_rules(Builder& b, Role role, const PolicyContext& pc) {
  switch (role) {
    case Role::kReactor:
      add_reactor_rules(b, pc);
      break;
    case Role::kKeyholder:
      add_keyholder_rules(b, pc);
      break;
    case Role::kAuth:
      add_auth_rules(b, pc);
      break;
  }
}

PolicyContext current_policy_context() {
  PolicyContext pc;
  pc.self_pid = static_cast<std::uint64_t>(getpid());
  UrandomScan scan;
  scan.anchor = reinterpret_cast<std::uintptr_t>(&wc_InitRng);
  // Built at run time so this object holds no copy of the string itself.
  scan.needle = std::string("/dev/") + "urandom";
  scan.needle.push_back('\0');
  dl_iterate_phdr(scan_object, &scan);
  pc.urandom_paths = std::move(scan.found);
  return pc;
}

const char* role_name(Role role) {
  switch (role) {
    case Role::kReactor:
      return "reactor";
    case Role::kKeyholder:
      return "keyholder";
    case Role::kAuth:
      return "auth";
  }
  return "?";
}

Status install(Role role, Mode mode) {
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    return make_error("PR_SET_NO_NEW_PRIVS: " + errno_text(errno));
  // API level 3: the kernel knows SECCOMP_RET_KILL_PROCESS and SECCOMP_RET_LOG.
  const bool modern = seccomp_api_get() >= 3;
  if (mode == Mode::kLog && !modern)
    return make_error("[sandbox] mode = log needs Linux 4.14 or later (SECCOMP_RET_LOG)");
  // A single-threaded process dies either way; KILL (thread) is the fallback.
  const std::uint32_t kill = modern ? SCMP_ACT_KILL_PROCESS : SCMP_ACT_KILL;
  scmp_filter_ctx raw = seccomp_init(mode == Mode::kEnforce ? kill : SCMP_ACT_LOG);
  if (raw == nullptr) return make_error("seccomp_init failed");
  std::unique_ptr<void, void (*)(scmp_filter_ctx)> ctx(raw, seccomp_release);
  // The arch check comes first in the generated program: a call made through
  // another ABI (x32, 32-bit compat) is killed even in log mode.
  int rc = seccomp_attr_set(raw, SCMP_FLTATR_ACT_BADARCH, kill);
  if (rc == 0) rc = seccomp_attr_set(raw, SCMP_FLTATR_CTL_NNP, 1);
  if (rc == 0) rc = seccomp_attr_set(raw, SCMP_FLTATR_CTL_TSYNC, 1);
  if (rc < 0) return make_error("seccomp_attr_set: " + errno_text(-rc));
  Builder b(raw, seccomp_arch_native());
  add_role_rules(b, role, current_policy_context());
  if (!b.status().ok()) return b.status();
  rc = seccomp_load(raw);
  if (rc < 0) return make_error("seccomp_load: " + errno_text(-rc));
  return {};
}

Status harden_process(bool holds_secrets) {
  if (!holds_secrets) return {};
  struct rlimit none {};
  if (setrlimit(RLIMIT_CORE, &none) != 0) return make_error("RLIMIT_CORE 0: " + errno_text(errno));
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
    return make_error("PR_SET_DUMPABLE 0: " + errno_text(errno));
  return {};
}

void dont_dump(void* p, std::size_t n) {
  if (p == nullptr || n == 0) return;
  const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
  const std::uintptr_t start = reinterpret_cast<std::uintptr_t>(p) & ~(page - 1);
  const std::uintptr_t end = (reinterpret_cast<std::uintptr_t>(p) + n + page - 1) & ~(page - 1);
  // Best effort both: a failure leaves the memory as it was, which is no
  // worse than not asking; RLIMIT_MEMLOCK may refuse the lock.
  (void)madvise(reinterpret_cast<void*>(start), end - start, MADV_DONTDUMP);
  (void)sodium_mlock(p, n);
}

void release_dont_dump(void* p, std::size_t n) {
  if (p == nullptr || n == 0) return;
  (void)sodium_munlock(p, n);  // wipes the bytes, then unlocks
}

int landlock_abi_version() {
#ifdef SYS_landlock_create_ruleset
  long v = syscall(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
  return v < 0 ? 0 : static_cast<int>(v);
#else
  return 0;
#endif
}

Status landlock_restrict(const std::vector<std::pair<std::string, bool>>& paths) {
#if defined(SYS_landlock_create_ruleset) && defined(SYS_landlock_add_rule) && \
    defined(SYS_landlock_restrict_self)
  const int abi = landlock_abi_version();
  if (abi < 1) return make_error("unsupported: this kernel has no Landlock (or it is disabled)");
  std::uint64_t file_write = LANDLOCK_ACCESS_FS_WRITE_FILE;
  std::uint64_t handled =
      LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE |
      LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
      LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |
      LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |
      LANDLOCK_ACCESS_FS_MAKE_SYM;
  std::uint64_t dir_write = LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR |
                            LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_DIR |
                            LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK |
                            LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_SYM;
#ifdef LANDLOCK_ACCESS_FS_REFER
  if (abi >= 2) {
    handled |= LANDLOCK_ACCESS_FS_REFER;
    dir_write |= LANDLOCK_ACCESS_FS_REFER;
  }
#endif
#ifdef LANDLOCK_ACCESS_FS_TRUNCATE
  if (abi >= 3) {
    handled |= LANDLOCK_ACCESS_FS_TRUNCATE;
    file_write |= LANDLOCK_ACCESS_FS_TRUNCATE;
    dir_write |= LANDLOCK_ACCESS_FS_TRUNCATE;
  }
#endif
  const std::uint64_t file_read = LANDLOCK_ACCESS_FS_READ_FILE;
  const std::uint64_t dir_read = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;

  struct landlock_ruleset_attr attr {};
  attr.handled_access_fs = handled;
  int ruleset = static_cast<int>(syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0));
  if (ruleset < 0) return make_error("landlock_create_ruleset: " + errno_text(errno));
  for (const auto& [path, write] : paths) {
    int fd = open(path.c_str(), O_PATH | O_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      close(ruleset);
      return make_error("landlock: " + path + ": " + errno_text(err));
    }
    struct stat st {};
    bool is_dir = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
    struct landlock_path_beneath_attr beneath {};
    beneath.parent_fd = fd;
    beneath.allowed_access = is_dir ? (write ? dir_read | dir_write : dir_read)
                                    : (write ? file_read | file_write : file_read);
    long rc = syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &beneath, 0);
    int err = errno;
    close(fd);
    if (rc != 0) {
      close(ruleset);
      return make_error("landlock_add_rule " + path + ": " + errno_text(err));
    }
  }
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    int err = errno;
    close(ruleset);
    return make_error("PR_SET_NO_NEW_PRIVS: " + errno_text(err));
  }
  long rc = syscall(SYS_landlock_restrict_self, ruleset, 0);
  int err = errno;
  close(ruleset);
  if (rc != 0) return make_error("landlock_restrict_self: " + errno_text(err));
  return {};
#else
  (void)paths;
  return make_error("unsupported: built without Landlock system call numbers");
#endif
}

std::string describe(Role role) {
  Builder b(nullptr, seccomp_arch_native());
  add_role_rules(b, role, current_policy_context());
  std::string line = std::string(role_name(role)) + ": seccomp allows " +
                     std::to_string(b.allowed().size()) + " syscalls on " +
                     arch_name(seccomp_arch_native()) + " (";
  for (std::size_t i = 0; i < b.allowed().size(); ++i)
    line += (i ? " " : "") + b.allowed()[i];
  line += "); file probes get EACCES (";
  for (std::size_t i = 0; i < b.failing().size(); ++i)
    line += (i ? " " : "") + b.failing()[i];
  line += "); anything else kills the process";
  return line;
}

}  // namespace hearth::sandbox
