#include "proc/privdrop.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"

namespace hearth::proc {

Result<ServiceUser> resolve_service_user(const std::string& name) {
  ServiceUser user;
  user.name = name;
  user.uid = geteuid();
  user.gid = getegid();
  if (geteuid() != 0) return user;  // a normal user stays who they are
  if (name == "root") {
    HEARTH_WARN("server",
                "running as root ([server] user = root): set an unprivileged user for "
                "anything but development");
    return user;
  }
  struct passwd pw, *found = nullptr;
  char buf[4096];
  if (getpwnam_r(name.c_str(), &pw, buf, sizeof buf, &found) != 0 || found == nullptr)
    return make_error("service user '" + name +
                      "' does not exist; create it (adduser --system --group --no-create-home " +
                      name + ") or set [server] user");
  if (found->pw_uid == 0)
    return make_error("[server] user '" + name + "' has uid 0; choose an unprivileged user");
  user.uid = found->pw_uid;
  user.gid = found->pw_gid;
  user.change = true;
  return user;
}

Status prepare_data_dir(const std::string& dir, const ServiceUser& user) {
  if (mkdir(dir.c_str(), 0700) == 0) {
    if (user.change && chown(dir.c_str(), user.uid, user.gid) != 0)
      return make_error("cannot give " + dir + " to user " + user.name + ": " + strerror(errno));
    return {};
  }
  if (errno != EEXIST)
    return make_error("cannot create data_dir " + dir + ": " + strerror(errno) +
                      "; create it or set [server] data_dir");
  struct stat st;
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return make_error("data_dir " + dir + " is not a directory; set [server] data_dir");
  if (user.change && st.st_uid != user.uid)
    return make_error("data_dir " + dir + " belongs to uid " + std::to_string(st.st_uid) +
                      ", not to the service user " + user.name + "; run: chown -R " + user.name +
                      " " + dir);
  return {};
}

Status drop_privileges(const ServiceUser& user) {
  if (!user.change) return {};
  gid_t gid = user.gid;
  if (setgroups(1, &gid) != 0 || setresgid(gid, gid, gid) != 0 ||
      setresuid(user.uid, user.uid, user.uid) != 0)
    return make_error("cannot switch to user " + user.name + ": " + strerror(errno));
  if (setuid(0) == 0 || geteuid() == 0)
    return make_error("dropped to " + user.name + " but could regain root; refusing to run");
  return {};
}

}  // namespace hearth::proc
