// agent-vm attach: not implemented yet; replaced when its issue lands.
#include "commands/command.h"

namespace avm::cmd {

std::unique_ptr<Command> make_attach() {
  return make_not_implemented("attach", "Open a terminal on a session's agent (tmux over SSH)");
}

}  // namespace avm::cmd
