// The `hearth` command line: run, user add|passwd|del|list, check config,
// version. Each subcommand lives in its own file.
#pragma once

#include <string>
#include <vector>

namespace hearth::cli {

int main(int argc, char** argv);

// Arguments after the subcommand words, with -c/--config extracted.
struct Args {
  std::string config_path;        // -c FILE, else $HEARTH_CONFIG, else the default
  std::vector<std::string> rest;  // everything else, in order
};

int cmd_run(const Args& args);
int cmd_user(const std::string& action, const Args& args);
int cmd_check(const Args& args);

// Prints "hearth: <message>" to stderr and returns 1 (or 2 for usage).
int fail(const std::string& message);
int usage_error(const std::string& message);

}  // namespace hearth::cli
