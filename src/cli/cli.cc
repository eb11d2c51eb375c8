#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

#include "core/config.h"
#include "proc/proc.h"

namespace hearth::cli {

int cmd_audit(const Args& args);   // audit.cc (cli.h is the lead's)
int cmd_invite(const Args& args);  // invite.cc (cli.h is the lead's)

namespace {

const char kUsage[] =
    "usage: hearth <command> [options]\n"
    "\n"
    "  run [-c FILE]                     start the server\n"
    "  user add JID [-c FILE] [--password PASS | --password-file FILE]\n"
    "                                    create an account (password from stdin if not given)\n"
    "  user passwd JID [-c FILE] [--password PASS | --password-file FILE]\n"
    "                                    change a password\n"
    "  user del JID [-c FILE]            delete an account\n"
    "  user list [-c FILE]               list accounts\n"
    "  invite [-c FILE] [--admin] [--uses N] [--expires 7d] [--user NAME]\n"
    "                                    make an invite (XEP-0401) and print its xmpp: URI;\n"
    "                                    --user: the new account and NAME become contacts\n"
    "  check config [-c FILE]            validate the configuration\n"
    "  audit [-c FILE] [--follow]        print the audit log (JSON lines)\n"
    "  version                           print the version\n"
    "\n"
    "The configuration is -c FILE, else $HEARTH_CONFIG, else /etc/hearth/hearth.ini.\n";

}  // namespace

int fail(const std::string& message) {
  fprintf(stderr, "hearth: %s\n", message.c_str());
  return 1;
}

int usage_error(const std::string& message) {
  fprintf(stderr, "hearth: %s\n\n%s", message.c_str(), kUsage);
  return 2;
}

int main(int argc, char** argv) {
  std::vector<std::string> words(argv + 1, argv + argc);
  if (words.empty() || words[0] == "help" || words[0] == "--help" || words[0] == "-h") {
    fputs(kUsage, words.empty() ? stderr : stdout);
    return words.empty() ? 2 : 0;
  }
  // The processes `hearth run` starts: never typed by people.
  if (words[0].rfind("--role=", 0) == 0) return proc::role_main(words);
  std::string command = words[0];
  std::string action;
  size_t first = 1;
  if (command == "user" || command == "check") {
    if (words.size() < 2) return usage_error("'" + command + "' needs an action");
    action = words[1];
    first = 2;
  }
  Args args;
  for (size_t i = first; i < words.size(); ++i) {
    const std::string& w = words[i];
    if (w == "-c" || w == "--config") {
      if (i + 1 >= words.size()) return usage_error(w + " needs a file name");
      args.config_path = words[++i];
    } else if (w.rfind("--config=", 0) == 0) {
      args.config_path = w.substr(9);
    } else {
      args.rest.push_back(w);
    }
  }
  if (args.config_path.empty()) args.config_path = config::default_path();

  if (command == "version" || command == "--version") {
    printf("hearth %s\n", HEARTH_VERSION);
    return 0;
  }
  if (command == "run") {
    return cmd_run(args);
  }
  if (command == "user") return cmd_user(action, args);
  if (command == "invite") return cmd_invite(args);  // src/cli/invite.cc
  if (command == "audit") return cmd_audit(args);    // src/cli/audit.cc
  if (command == "check") {
    if (action != "config") return usage_error("unknown check '" + action + "'; try: check config");
    return cmd_check(args);
  }
  return usage_error("unknown command '" + command + "'");
}

}  // namespace hearth::cli
