// agent-vm qga: not implemented yet; replaced when its issue lands.
#include "commands/command.h"

namespace avm::cmd {

std::unique_ptr<Command> make_qga() {
  return make_not_implemented("qga", "Send one command to a QEMU guest agent socket");
}

}  // namespace avm::cmd
