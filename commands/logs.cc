// agent-vm logs: not implemented yet; replaced when its issue lands.
#include "commands/command.h"

namespace avm::cmd {

std::unique_ptr<Command> make_logs() {
  return make_not_implemented("logs", "Show a session's serial console log");
}

}  // namespace avm::cmd
