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

namespace {

bool process_memory(pid_t p, Memory* m) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/smaps_rollup", static_cast<int>(p));
  FILE* f = fopen(path, "r");
  if (f == nullptr) return false;
  char line[256];
  while (fgets(line, sizeof line, f) != nullptr) {
    long v = 0;
    if (sscanf(line, "Rss: %ld kB", &v) == 1)
      m->rss_kib += v;
    else if (sscanf(line, "Pss: %ld kB", &v) == 1)
      m->pss_kib += v;
    else if (sscanf(line, "Private_Dirty: %ld kB", &v) == 1)
      m->private_dirty_kib += v;
    else if (sscanf(line, "Swap: %ld kB", &v) == 1)
      m->private_dirty_kib += v;
  }
  fclose(f);
  ++m->processes;
  return true;
}

std::string process_name(pid_t p) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/cmdline", static_cast<int>(p));
  FILE* f = fopen(path, "r");
  std::string cmd;
  if (f != nullptr) {
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    cmd.assign(buf, n);
  }
  for (size_t i = 0; i < cmd.size();) {
    size_t e = cmd.find('\0', i);
    if (e == std::string::npos) e = cmd.size();
    std::string arg = cmd.substr(i, e - i);
    if (arg.compare(0, 7, "--role=") == 0) return arg.substr(7);
    i = e + 1;
  }
  snprintf(path, sizeof path, "/proc/%d/comm", static_cast<int>(p));
  f = fopen(path, "r");
  std::string comm = "process";
  if (f != nullptr) {
    char buf[64];
    if (fgets(buf, sizeof buf, f) != nullptr) {
      comm = buf;
      while (!comm.empty() && (comm.back() == '\n' || comm.back() == ' '))
        comm.pop_back();
    }
    fclose(f);
  }
  for (char& c : comm)
    if (c == ' ' || c == '.' || c == '/') c = '_';
  return comm;
}

}  // namespace

Memory tree_memory(pid_t pid) {
  Memory m;
  for (pid_t p : process_tree(pid))
    process_memory(p, &m);
  return m;
}

std::vector<ProcessMemory> tree_memory_detail(pid_t pid) {
  std::vector<ProcessMemory> out;
  for (pid_t p : process_tree(pid)) {
    ProcessMemory pm;
    pm.pid = p;
    if (!process_memory(p, &pm.memory)) continue;
    pm.name = process_name(p);
    int same = 0;
    for (const ProcessMemory& o : out)
      if (o.name == pm.name || o.name.compare(0, pm.name.size() + 1, pm.name + "#") == 0) ++same;
    if (same > 0) pm.name += "#" + std::to_string(same + 1);
    out.push_back(std::move(pm));
  }
  return out;
}

long self_rss_kib() {
  FILE* f = fopen("/proc/self/status", "r");
  if (f == nullptr) return 0;
  char line[256];
  long v = 0;
  while (fgets(line, sizeof line, f) != nullptr)
    if (sscanf(line, "VmRSS: %ld kB", &v) == 1) break;
  fclose(f);
  return v;
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
