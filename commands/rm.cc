// agent-vm rm: not implemented yet; replaced when its issue lands.
#include "commands/command.h"

namespace avm::cmd {

std::unique_ptr<Command> make_rm() {
  return make_not_implemented("rm", "Delete a session and its folder");
}

}  // namespace avm::cmd
