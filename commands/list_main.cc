// agent-list: the list command alone, in a program of its own. It links
// only what observing sessions needs (no libgit2, libssh or OpenSSL), so a
// start is not spent in the dynamic loader: agent-list is run in loops and
// by scripts, and its start was half its time with one VM, a quarter with 20.
#include <string>
#include <vector>

#include "commands/cli.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  avm::cmd::CommandList commands;
  commands.push_back(avm::cmd::make_list());
  return avm::cmd::run_cli(args, std::move(commands));
}
