// agent-vm resume: not implemented yet; replaced when its issue lands.
#include "commands/command.h"

namespace avm::cmd {

std::unique_ptr<Command> make_resume() {
  return make_not_implemented("resume", "Boot a new VM on a stopped session; the agent continues");
}

}  // namespace avm::cmd
