#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

namespace hearth {
namespace {
LogLevel g_level = LogLevel::kInfo;
const char* level_name(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "?";
}
}  // namespace

void log_set_level(LogLevel level) {
  g_level = level;
}
LogLevel log_level() {
  return g_level;
}

bool log_parse_level(std::string_view text, LogLevel* out) {
  if (text == "debug")
    *out = LogLevel::kDebug;
  else if (text == "info")
    *out = LogLevel::kInfo;
  else if (text == "warn" || text == "warning")
    *out = LogLevel::kWarn;
  else if (text == "error")
    *out = LogLevel::kError;
  else
    return false;
  return true;
}

void log_write(LogLevel level, const char* component, const char* fmt, ...) {
  char line[2048];
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  int n =
      snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s: ", tm.tm_year + 1900,
               tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
               level_name(level), component);
  if (n < 0) return;
  size_t len = static_cast<size_t>(n);
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(line + len, sizeof line - len - 1, fmt, ap);
  va_end(ap);
  if (m > 0) len += static_cast<size_t>(m);
  if (len > sizeof line - 2) len = sizeof line - 2;
  // One event per line: control characters from peers never split a line.
  for (size_t i = 0; i < len; ++i)
    if (static_cast<unsigned char>(line[i]) < 0x20) line[i] = ' ';
  line[len++] = '\n';
  ssize_t w = write(2, line, len);
  (void)w;
}

}  // namespace hearth
