// agent-vm stop: not implemented yet; replaced when its issue lands.
#include "commands/command.h"

namespace avm::cmd {

std::unique_ptr<Command> make_stop() {
  return make_not_implemented("stop", "Press the VM's power button and wait for it to shut down");
}

}  // namespace avm::cmd
