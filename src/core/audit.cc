#include "core/audit.h"

#include <errno.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>

#include "core/log.h"

namespace hearth::audit {
namespace {

int g_fd = -1;
std::string g_process = "hearth";

void append_json_string(std::string* out, std::string_view s) {
  out->push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          snprintf(buf, sizeof buf, "\\u%04x", c);
          out->append(buf);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

std::string now_utc() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char buf[96];  // room for any int the compiler imagines
  snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
           tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
           static_cast<int>(ts.tv_nsec / 1000000) % 1000);
  return buf;
}

bool all_digits(std::string_view v) {
  if (v.empty()) return false;
  for (char c : v)
    if (c < '0' || c > '9') return false;
  return true;
}

}  // namespace

void set_fd(int fd) {
  g_fd = fd;
}

int fd() {
  return g_fd;
}

void set_process(std::string_view name) {
  g_process.assign(name);
}

std::string format(std::string_view timestamp, std::string_view process, std::string_view type,
                   std::initializer_list<Field> fields) {
  std::string line = "{\"ts\":";
  append_json_string(&line, timestamp);
  line += ",\"proc\":";
  append_json_string(&line, process);
  line += ",\"event\":";
  append_json_string(&line, type);
  for (const Field& f : fields) {
    line.push_back(',');
    append_json_string(&line, f.key);
    line.push_back(':');
    if (f.number && all_digits(f.value)) {
      line.append(f.value);
    } else {
      append_json_string(&line, f.value);
    }
  }
  line.push_back('}');
  return line;
}

void event(std::string_view type, std::initializer_list<Field> fields) {
  std::string line = format(now_utc(), g_process, type, fields);
  if (g_fd < 0) {
    HEARTH_INFO("audit", "%s", line.c_str());
    return;
  }
  line.push_back('\n');
  // O_APPEND: one write is one line, whoever else writes the file.
  ssize_t n;
  do {
    n = ::write(g_fd, line.data(), line.size());
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(line.size()))
    HEARTH_WARN("audit", "could not write the audit log; event: %s", line.c_str());
}

}  // namespace hearth::audit
