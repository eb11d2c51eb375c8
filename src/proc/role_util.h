// Pieces every role's main shares: reading the INI from the monitor's
// descriptor, entering the sandbox, and failing loudly.
#pragma once

#include <string>

#include "core/config.h"
#include "core/result.h"
#include "net/tls.h"
#include "proc/proc.h"

namespace hearth::proc {

// The INI from kConfigFd (read from offset 0: the monitor's file).
Result<config::Config> read_config_fd();

// Logs "ROLE: cannot start: MESSAGE" and returns the exit code 1.
int fail_role(const char* role, const Error& error);

// Resource hygiene (no core dumps, not dumpable for secret holders), then
// the role's seccomp filter in the configured mode.
Status enter_sandbox(Role role, const config::Config& cfg, bool holds_secrets);

// The keyholder protocol carries net::SignRequest (ipc::SignRequest's
// payload): these convert between the two.
std::string encode_sign_request(const net::SignRequest& req);
Result<net::SignRequest> decode_sign_request(std::string_view payload);

int reactor_main(const std::string& listen_spec);
int keyholder_main();
int auth_main();

}  // namespace hearth::proc
