// `hearth audit [-c FILE] [--follow]`: prints the audit log (JSON lines,
// core/audit.h); with --follow keeps printing what is appended, like
// `tail -f`, and starts over when the file is truncated (logrotate's
// copytruncate).
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "cli/cli.h"
#include "core/config.h"

namespace hearth::cli {
namespace {

constexpr useconds_t kPollInterval = 250 * 1000;

// Copies from `*offset` to the end of `fd` to stdout.
bool copy_out(int fd, off_t* offset) {
  char buf[65536];
  for (;;) {
    ssize_t n = pread(fd, buf, sizeof buf, *offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) break;
    if (fwrite(buf, 1, static_cast<size_t>(n), stdout) != static_cast<size_t>(n)) return false;
    *offset += n;
  }
  fflush(stdout);
  return true;
}

}  // namespace

int cmd_audit(const Args& args) {
  bool follow = false;
  for (const std::string& a : args.rest) {
    if (a == "--follow" || a == "-f") {
      follow = true;
    } else {
      return usage_error("audit: unknown argument '" + a + "'");
    }
  }
  Result<config::Config> cfg = config::load_file(args.config_path);
  if (!cfg.ok()) return fail(cfg.error().message);
  std::string path = cfg->audit_path();
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT && !follow) return 0;  // nothing audited yet
    return fail("audit log " + path + ": " + strerror(errno));
  }
  off_t offset = 0;
  if (!copy_out(fd, &offset)) {
    close(fd);
    return fail("audit log " + path + ": " + strerror(errno));
  }
  while (follow) {
    usleep(kPollInterval);
    struct stat st;
    if (fstat(fd, &st) != 0) break;
    if (st.st_size < offset) offset = 0;  // truncated: start over
    if (!copy_out(fd, &offset)) break;
  }
  close(fd);
  return 0;
}

}  // namespace hearth::cli
