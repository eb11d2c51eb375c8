#include <stdio.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "core/config.h"
#include "net/tls.h"

namespace hearth::cli {

int cmd_check(const Args& args) {
  if (!args.rest.empty()) return usage_error("unexpected argument '" + args.rest[0] + "'");
  Result<config::Config> cfg = config::load_file(args.config_path);
  if (!cfg.ok()) return fail(cfg.error().message);
  printf("config OK: %s\n", args.config_path.c_str());
  printf("domain: %s\n", cfg->domain.c_str());
  printf("data_dir: %s\n", cfg->data_dir.c_str());
  std::string cert = cfg->certificate_path();
  struct stat st;
  if (stat(cert.c_str(), &st) == 0) {
    Result<std::string> fp = net::certificate_fingerprint(cert);
    if (fp.ok())
      printf("certificate: %s (SHA-256 %s)\n", cert.c_str(), fp->c_str());
    else
      printf("certificate: %s (unreadable: %s)\n", cert.c_str(), fp.error().message.c_str());
  } else if (cfg->certificate.empty()) {
    printf("certificate: self-signed, generated at %s on first start\n", cert.c_str());
  } else {
    return fail("certificate " + cert + " does not exist; check [tls] certificate");
  }
  return 0;
}

}  // namespace hearth::cli
