// The sandbox every worker enters before it reads a byte from the network or
// from another process (ARCHITECTURE.md §1): a seccomp allow-list per role,
// optional Landlock file rules, and hygiene for processes holding secrets.
//
// Order in a worker: open what it owns, drop privileges, harden_process(),
// landlock_restrict() (best effort), install() — the seccomp filter does not
// allow the Landlock or prctl calls, so it comes last.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "core/result.h"

namespace hearth::sandbox {

enum class Role { kReactor, kKeyholder, kAuth };

// [sandbox] mode. kLog turns the default action into SCMP_ACT_LOG: a call
// outside the allow-list is logged by the kernel (audit/dmesg) and allowed.
enum class Mode { kEnforce, kLog };

const char* role_name(Role role);

// PR_SET_NO_NEW_PRIVS, then the role's filter. Default action: kill the whole
// process (SCMP_ACT_KILL_PROCESS) in kEnforce, SCMP_ACT_LOG in kLog. Calls of
// another architecture's ABI (e.g. x32, or 32-bit calls on a 64-bit kernel)
// always kill. File probes (open, openat, stat, access, readlink) fail with
// EACCES instead of killing, so a library that probes a path degrades.
Status install(Role role, Mode mode);

// RLIMIT_CORE 0 (soft and hard) and PR_SET_DUMPABLE 0 when holds_secrets
// (keyholder, auth): no core file, no ptrace or /proc/PID/mem by the same uid.
// The reactor (holds_secrets = false) is left as the administrator set it: it
// holds no key or verifier by design, and the tests read its memory to prove it.
Status harden_process(bool holds_secrets);

// Keeps key or credential memory out of core dumps (MADV_DONTDUMP on the
// pages covering [p, p+n)) and, best effort, out of swap (sodium_mlock).
// Call release_dont_dump() before freeing: it wipes the bytes and unlocks.
void dont_dump(void* p, std::size_t n);
void release_dont_dump(void* p, std::size_t n);

// Landlock ABI version of the running kernel, 0 when unavailable.
int landlock_abi_version();

// Restricts this process's file access to the given paths (true = write too).
// Best effort: on a kernel without Landlock the error message starts with
// "unsupported" and nothing changed; any other error is a real failure.
Status landlock_restrict(const std::vector<std::pair<std::string, bool>>& paths);

// One line for `hearth check`: what the role's filter allows on this machine.
std::string describe(Role role);

}  // namespace hearth::sandbox
