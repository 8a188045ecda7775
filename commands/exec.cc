// agent-vm exec: not implemented yet; replaced when its issue lands.
#include "commands/command.h"

namespace avm::cmd {

std::unique_ptr<Command> make_exec() {
  return make_not_implemented("exec", "Run one command in a session's guest; its exit code is passed through");
}

}  // namespace avm::cmd
