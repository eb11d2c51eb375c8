// What the server costs, read from /proc: memory (smaps_rollup) and CPU time
// (stat) of a process and all its descendants (Hearth runs as several).
#pragma once

#include <sys/types.h>

#include <vector>

namespace hearth::bench {

struct Memory {
  long rss_kib = 0;
  long pss_kib = 0;
  int processes = 0;
};

// pid and every live descendant.
std::vector<pid_t> process_tree(pid_t pid);
// Summed over the tree; processes == 0 if pid is gone.
Memory tree_memory(pid_t pid);
// CPU time of the tree in microseconds: the sum over every thread of
// /proc/PID/task/TID/schedstat (nanoseconds), or with g_use_schedstat off
// (or schedstat missing) utime + stime from /proc/PID/stat (clock ticks,
// 10 ms each: too coarse for short runs).
long long tree_cpu_us(pid_t pid);
extern bool g_use_schedstat;

}  // namespace hearth::bench
