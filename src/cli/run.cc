#include <stdio.h>

#include "cli/cli.h"
#include "core/config.h"
#include "core/log.h"
#include "xmpp/server.h"

namespace hearth::cli {

int cmd_run(const Args& args) {
  Result<config::Config> cfg = config::load_file(args.config_path);
  if (!cfg.ok()) return fail(cfg.error().message);
  log_set_level(cfg->log_level);
  HEARTH_INFO("server", "hearth %s starting with %s", HEARTH_VERSION, args.config_path.c_str());
  xmpp::Server server(std::move(cfg.value()));
  server.set_config_path(args.config_path);
  if (Status s = server.start(); !s.ok()) {
    HEARTH_ERROR("server", "cannot start: %s", s.error().message.c_str());
    return 1;
  }
  return server.run();
}

}  // namespace hearth::cli
