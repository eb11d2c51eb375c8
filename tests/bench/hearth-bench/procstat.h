// What the server costs, read from /proc: memory (smaps_rollup) and CPU time
// (stat) of a process and all its descendants (Hearth runs as several).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace hearth::bench {

struct Memory {
  long rss_kib = 0;
  long pss_kib = 0;
  // Private_Dirty + Swap of smaps_rollup: pages only this process holds and
  // has written (heap, stacks, relocated data). Unlike PSS it does not
  // depend on what else on the machine maps the same libraries.
  long private_dirty_kib = 0;
  int processes = 0;
};

struct ProcessMemory {
  pid_t pid = 0;
  std::string name;  // the --role=X of a Hearth child, else the command name
  Memory memory;     // processes == 1
};

// pid and every live descendant.
std::vector<pid_t> process_tree(pid_t pid);
// Summed over the tree; processes == 0 if pid is gone.
Memory tree_memory(pid_t pid);
// One entry per process of the tree, in tree order (pid first).
std::vector<ProcessMemory> tree_memory_detail(pid_t pid);
// This process (the load generator itself): VmRSS in KiB.
long self_rss_kib();
// CPU time of the tree in microseconds: the sum over every thread of
// /proc/PID/task/TID/schedstat (nanoseconds), or with g_use_schedstat off
// (or schedstat missing) utime + stime from /proc/PID/stat (clock ticks,
// 10 ms each: too coarse for short runs).
long long tree_cpu_us(pid_t pid);
extern bool g_use_schedstat;

}  // namespace hearth::bench
