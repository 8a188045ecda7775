// agent-vm spawn: not implemented yet; replaced when its issue lands.
#include "commands/command.h"

namespace avm::cmd {

std::unique_ptr<Command> make_spawn() {
  return make_not_implemented("spawn", "Create a session: clone a repository and boot its VM");
}

}  // namespace avm::cmd
