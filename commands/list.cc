// agent-vm list: not implemented yet; replaced when its issue lands.
#include "commands/command.h"

namespace avm::cmd {

std::unique_ptr<Command> make_list() {
  return make_not_implemented("list", "List sessions with their observed state");
}

}  // namespace avm::cmd
