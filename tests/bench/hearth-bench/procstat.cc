#include "procstat.h"

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

namespace hearth::bench {
namespace {

// Fields after the "(comm)" of /proc/PID/stat; index 0 is the state.
bool stat_fields(pid_t pid, std::vector<std::string>* out) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  FILE* f = fopen(path, "r");
  if (f == nullptr) return false;
  char buf[2048];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char* p = strrchr(buf, ')');
  if (p == nullptr) return false;
  out->clear();
  for (char* tok = strtok(p + 1, " \n"); tok != nullptr; tok = strtok(nullptr, " \n")) {
    out->push_back(tok);
  }
  return out->size() > 13;
}

}  // namespace

std::vector<pid_t> process_tree(pid_t root) {
  std::multimap<pid_t, pid_t> children;
  DIR* d = opendir("/proc");
  if (d != nullptr) {
    std::vector<std::string> f;
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
      pid_t pid = static_cast<pid_t>(atoi(e->d_name));
      if (!stat_fields(pid, &f) || f[0] == "Z") continue;
      children.emplace(static_cast<pid_t>(atoi(f[1].c_str())), pid);
    }
    closedir(d);
  }
  std::vector<pid_t> out;
  if (kill(root, 0) != 0 && errno != EPERM) return out;
  out.push_back(root);
  for (size_t i = 0; i < out.size(); ++i) {
    auto [b, e] = children.equal_range(out[i]);
    for (auto it = b; it != e; ++it)
      out.push_back(it->second);
  }
  return out;
}

Memory tree_memory(pid_t pid) {
  Memory m;
  for (pid_t p : process_tree(pid)) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/smaps_rollup", static_cast<int>(p));
    FILE* f = fopen(path, "r");
    if (f == nullptr) continue;
    char line[256];
    while (fgets(line, sizeof line, f) != nullptr) {
      long v = 0;
      if (sscanf(line, "Rss: %ld kB", &v) == 1)
        m.rss_kib += v;
      else if (sscanf(line, "Pss: %ld kB", &v) == 1)
        m.pss_kib += v;
    }
    fclose(f);
    ++m.processes;
  }
  return m;
}

namespace {

// CPU time of every thread of a process in ns from schedstat (exact), or -1.
long long schedstat_ns(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/task", static_cast<int>(pid));
  DIR* d = opendir(path);
  if (d == nullptr) return -1;
  long long sum = 0;
  bool any = false;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    char file[300];
    snprintf(file, sizeof file, "/proc/%d/task/%s/schedstat", static_cast<int>(pid), e->d_name);
    FILE* f = fopen(file, "r");
    if (f == nullptr) continue;
    long long ns = 0;
    if (fscanf(f, "%lld", &ns) == 1) {
      sum += ns;
      any = true;
    }
    fclose(f);
  }
  closedir(d);
  return any ? sum : -1;
}

}  // namespace

bool g_use_schedstat = true;

long long tree_cpu_us(pid_t pid) {
  if (g_use_schedstat) {
    long long ns = 0;
    bool ok = true;
    for (pid_t p : process_tree(pid)) {
      long long v = schedstat_ns(p);
      if (v < 0) {
        ok = false;
        break;
      }
      ns += v;
    }
    if (ok) return ns / 1000;
  }
  static const long kTicks = sysconf(_SC_CLK_TCK);
  long long ticks = 0;
  std::vector<std::string> f;
  for (pid_t p : process_tree(pid)) {
    // After "(comm)": state(0) ppid(1) ... utime(11) stime(12).
    if (!stat_fields(p, &f)) continue;
    ticks += atoll(f[11].c_str()) + atoll(f[12].c_str());
  }
  return ticks * 1000000 / kTicks;
}

}  // namespace hearth::bench
