#include <vector>
#include <string>

#include "commands/cli.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  return avm::cmd::run_cli(args, avm::cmd::all_commands());
}
