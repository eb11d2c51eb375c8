// `hearth invite [--admin] [--uses N] [--expires 7d] [--user NAME]`: makes
// an invite (XEP-0401) and prints its xmpp: URI. The invite goes straight
// into data.mdb, whether the server runs or not: LMDB lets a second process
// write (writers are serialised) and the server reads each invite when it
// is used, so it needs no notice.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/audit.h"
#include "core/config.h"
#include "modules/host.h"
#include "modules/invites/invite.h"
#include "proc/privdrop.h"
#include "storage/env.h"
#include "xmpp/jid.h"

namespace hearth::cli {
namespace {

constexpr uint32_t kMaxUses = 1000;

// The audit log as the monitor opens it (before the privilege drop); on
// failure the events go to stderr with the normal log.
void open_audit_log(const config::Config& cfg, const proc::ServiceUser& user) {
  std::string path = cfg.audit_path();
  int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return;
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
      (user.change && fchown(fd, user.uid, user.gid) != 0)) {
    close(fd);
    return;
  }
  audit::set_fd(fd);
  audit::set_process("cli");
}

}  // namespace

int cmd_invite(const Args& args) {
  Result<config::Config> cfg = config::load_file(args.config_path);
  if (!cfg.ok()) return fail(cfg.error().message);

  modules::Invite invite;
  invite.creator = "cli";
  uint64_t valid_for = cfg->registration.invite_expires;
  const std::vector<std::string>& rest = args.rest;
  for (size_t i = 0; i < rest.size(); ++i) {
    const std::string& w = rest[i];
    bool has_value = i + 1 < rest.size();
    if (w == "--admin") {
      invite.admin = true;
    } else if (w == "--uses") {
      if (!has_value) return usage_error("--uses needs a number");
      const std::string& v = rest[++i];
      char* end = nullptr;
      errno = 0;
      unsigned long n = strtoul(v.c_str(), &end, 10);
      if (v.empty() || v[0] == '-' || *end != '\0' || errno != 0 || n == 0 || n > kMaxUses)
        return usage_error("--uses must be a number from 1 to " + std::to_string(kMaxUses));
      invite.uses_left = static_cast<uint32_t>(n);
    } else if (w == "--expires") {
      if (!has_value) return usage_error("--expires needs a duration (7d, 12h, never)");
      Result<uint64_t> d = modules::parse_invite_duration(rest[++i]);
      if (!d.ok()) return usage_error("--expires: " + d.error().message);
      valid_for = d.value();
    } else if (w == "--user") {
      if (!has_value) return usage_error("--user needs the inviter's name");
      std::string name = rest[++i];
      // NAME or NAME@domain
      if (size_t at = name.find('@'); at != std::string::npos) {
        if (name.substr(at + 1) != cfg->domain)
          return fail("this server serves " + cfg->domain + ", not " + name.substr(at + 1));
        name.resize(at);
      }
      Result<std::string> local = xmpp::normalize_localpart(name);
      if (!local.ok()) return fail("invalid user name '" + name + "': " + local.error().message);
      invite.inviter = std::move(local.value());
    } else {
      return usage_error("unexpected argument '" + w + "'");
    }
  }

  Result<proc::ServiceUser> user = proc::resolve_service_user(cfg->user);
  if (!user.ok()) return fail(user.error().message);
  if (Status s = proc::prepare_data_dir(cfg->data_dir, user.value()); !s.ok())
    return fail(s.error().message);
  open_audit_log(cfg.value(), user.value());
  if (Status s = proc::drop_privileges(user.value()); !s.ok()) return fail(s.error().message);

  // Every table, as the server opens the file (the first opener creates them).
  storage::EnvOptions options;
  options.dbs = modules::Host::all_tables();
  Result<std::unique_ptr<storage::Env>> db = storage::Env::open(cfg->data_path(), options);
  if (!db.ok()) return fail(db.error().message);
  Result<storage::Dbi> table = (*db)->db(modules::kInvitesTable);
  if (!table.ok()) return fail("this build has no invites module (" + table.error().message + ")");

  invite.token = modules::new_invite_token();
  invite.created = static_cast<uint64_t>(time(nullptr));
  invite.expires = valid_for == 0 ? 0 : invite.created + valid_for;
  if (Status s = modules::store_invite(*db.value(), table.value(), invite); !s.ok())
    return fail("storing the invite: " + s.error().message);
  std::string uses = std::to_string(invite.uses_left);
  audit::event("invite_created", {{"invite", std::string_view(invite.token).substr(0, 6)},
                                  {"by", "cli"},
                                  {"inviter", invite.inviter},
                                  {"uses", uses, true},
                                  {"admin", invite.admin ? "true" : "false"}});

  printf("%s\n", modules::invite_uri(invite, cfg->domain).c_str());
  fflush(stdout);
  std::string when = "never expires";
  if (invite.expires != 0) {
    time_t t = static_cast<time_t>(invite.expires);
    struct tm tm;
    char buf[32];
    gmtime_r(&t, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
    when = std::string("valid until ") + buf;
  }
  fprintf(stderr, "hearth: invite for %u account%s%s, %s.\n", invite.uses_left,
          invite.uses_left == 1 ? "" : "s", invite.admin ? " with the admin role" : "",
          when.c_str());
  if (cfg->registration.mode == "closed")
    fprintf(stderr,
            "hearth: warning: [registration] mode = closed: nobody can register with it "
            "until mode is invite or open.\n");
  fprintf(stderr,
          "hearth: open the URI in an XMPP client that supports invites (e.g. Conversations); "
          "a web landing page for invites comes with the HTTP server.\n");
  return 0;
}

}  // namespace hearth::cli
