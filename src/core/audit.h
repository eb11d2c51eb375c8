// The audit log (issue 6): security events as JSON lines, one object per
// line, in a stream of their own (`[log] audit_file`), so that an admin or
// a tool (fail2ban, jq) can follow them without parsing the debug log.
//
//   {"ts":"2026-11-22T00:59:01.123Z","proc":"auth","event":"auth_failure",
//    "ip":"192.0.2.1","user":"alice","mechanism":"SCRAM-SHA-256"}
//
// Field names are stable; values are strings unless marked as numbers.
// Never put a password, token or key into a field.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

namespace hearth::audit {

struct Field {
  std::string_view key;
  std::string_view value;
  bool number = false;  // written without quotes (digits only)
};

// Where events go: a file descriptor opened with O_APPEND by the monitor
// and inherited by every process (-1: none; events then go to the normal
// log at info level, prefixed "audit:").
void set_fd(int fd);
int fd();
// The "proc" field of this process's events ("monitor", "reactor", "auth").
void set_process(std::string_view name);

// Writes one event with one write(2) (whole lines, even when several
// processes share the file).
void event(std::string_view type, std::initializer_list<Field> fields);

// The line event() writes, without the newline (tests).
std::string format(std::string_view timestamp, std::string_view process, std::string_view type,
                   std::initializer_list<Field> fields);

}  // namespace hearth::audit
