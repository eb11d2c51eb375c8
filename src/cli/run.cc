#include "cli/cli.h"
#include "proc/proc.h"

namespace hearth::cli {

int cmd_run(const Args& args) {
  if (!args.rest.empty()) return usage_error("unexpected argument '" + args.rest[0] + "'");
  return proc::run_monitor(args.config_path);
}

}  // namespace hearth::cli
