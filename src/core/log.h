// Logging: one event per line on stderr (journald and procd pick it up),
// level-filtered. Never pass a password, token or key to these functions.
#pragma once

#include <string_view>

namespace hearth {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

void log_set_level(LogLevel level);
LogLevel log_level();
bool log_parse_level(std::string_view text, LogLevel* out);

// printf-style; the line is written with a single write(2) so lines from
// several processes never interleave.
void log_write(LogLevel level, const char* component, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));

}  // namespace hearth

#define HEARTH_LOG(level, component, ...)                                   \
  do {                                                                      \
    if (static_cast<int>(level) >= static_cast<int>(::hearth::log_level())) \
      ::hearth::log_write(level, component, __VA_ARGS__);                   \
  } while (0)
#define HEARTH_DEBUG(component, ...) HEARTH_LOG(::hearth::LogLevel::kDebug, component, __VA_ARGS__)
#define HEARTH_INFO(component, ...) HEARTH_LOG(::hearth::LogLevel::kInfo, component, __VA_ARGS__)
#define HEARTH_WARN(component, ...) HEARTH_LOG(::hearth::LogLevel::kWarn, component, __VA_ARGS__)
#define HEARTH_ERROR(component, ...) HEARTH_LOG(::hearth::LogLevel::kError, component, __VA_ARGS__)
