// The process model (ARCHITECTURE.md §1): `hearth run` is the monitor; it
// starts the reactor and the keyholder and auth workers as fresh processes
// (fork + exec of its own binary with --role=X) and supervises them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "sandbox/sandbox.h"

namespace hearth::proc {

// The roles are the sandbox's: one filter per role.
using Role = sandbox::Role;
using sandbox::role_name;
bool parse_role(std::string_view name, Role* out);

// Descriptors every child finds at fixed numbers after exec.
inline constexpr int kChannelFd = 3;        // reactor: to the monitor; worker: to the reactor
inline constexpr int kConfigFd = 4;         // the INI, opened by the monitor (read from offset 0)
inline constexpr int kFirstListenerFd = 5;  // reactor: listening sockets, in --listen order
inline constexpr int kAdminFd = 5;          // auth: from the monitor, connections of `hearth user`

// Control messages (the worker protocols are in src/ipc/messages.h).
inline constexpr uint16_t kMsgAttachWorker = 0x0301;   // monitor -> reactor: u8 role + 1 fd
inline constexpr uint16_t kMsgKeyHello = 0x0202;       // reactor -> keyholder: are you ready?
inline constexpr uint16_t kMsgKeyHelloReply = 0x0282;  // u8 ok + string (fingerprint or error)
inline constexpr uint16_t kMsgReloadConfig = 0x0302;   // monitor -> reactor: the INI text
inline constexpr uint16_t kMsgAdminClient = 0x0303;    // monitor -> auth: 1 fd, a CLI connection

// The control socket in data_dir (mode 0600, the service user's): `hearth
// user ...` sends its AccountRequest there while the server runs; the
// monitor hands each connection to the auth worker, which owns the
// accounts. (A password never passes through the monitor or the reactor.)
std::string control_socket_path(const std::string& data_dir);

// `hearth run`: returns the exit code.
int run_monitor(const std::string& config_path);
// `hearth --role=X ...` (started by the monitor only).
int role_main(const std::vector<std::string>& args);

}  // namespace hearth::proc
