#include "cli/cli.h"

int main(int argc, char** argv) {
  return hearth::cli::main(argc, argv);
}
