#include <stdio.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "core/config.h"
#include "modules/registry.h"
#include "net/tls.h"
#include "sandbox/sandbox.h"

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
  // The processes `hearth run` starts and what confines each.
  printf("processes: monitor (supervises; binds ports; no filter), reactor, keyholder, auth\n");
  printf("service user: %s (when started as root)\n", cfg->user.c_str());
  int landlock = sandbox::landlock_abi_version();
  for (sandbox::Role role :
       {sandbox::Role::kReactor, sandbox::Role::kKeyholder, sandbox::Role::kAuth}) {
    printf(
        "%s: seccomp %s; landlock %s\n", sandbox::role_name(role),
        cfg->sandbox_log ? "LOG ONLY (violations are logged, not stopped)" : "enforce",
        landlock > 0 ? ("ABI " + std::to_string(landlock)).c_str() : "not offered by this kernel");
    printf("  %s\n", sandbox::describe(role).c_str());
  }
  // The compiled-in modules and which the INI switches off (ARCHITECTURE.md §3).
  printf("modules:\n");
  for (const modules::ModuleDef* m : modules::all_modules()) {
    printf("  %-10s %s  %s\n", m->name, cfg->module_enabled(m->name) ? "on " : "OFF", m->doc);
  }
  if (cfg->sandbox_log)
    fprintf(stderr,
            "hearth: WARNING: [sandbox] mode = log does not stop a compromised process; "
            "use mode = enforce outside debugging\n");
  if (cfg->registration.mode == "open") {
    fprintf(stderr,
            "hearth: WARNING: [registration] mode = open: anyone can create accounts (at most %u "
            "per IP address per hour); use mode = invite unless you mean it\n",
            cfg->registration.max_per_ip_per_hour);
  }
  return 0;
}

}  // namespace hearth::cli
