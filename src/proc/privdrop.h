// The unprivileged service user: started as root, every process switches to
// [server] user after it has bound its ports and opened its files.
#pragma once

#include <sys/types.h>

#include <string>

#include "core/result.h"

namespace hearth::proc {

struct ServiceUser {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  bool change = false;  // false when not started as root (stay who we are) or user = root
};

// Looks the user up when running as root; otherwise `change` is false.
Result<ServiceUser> resolve_service_user(const std::string& name);

// Creates `dir` with mode 0700 if missing and, when changing user, gives it
// to the service user. Existing directories are left as they are.
Status prepare_data_dir(const std::string& dir, const ServiceUser& user);

// setgroups/setgid/setuid to the service user, and check that root cannot
// be regained. A no-op when `change` is false.
Status drop_privileges(const ServiceUser& user);

}  // namespace hearth::proc
