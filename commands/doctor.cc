// agent-vm doctor: not implemented yet; replaced when its issue lands.
#include "commands/command.h"

namespace avm::cmd {

std::unique_ptr<Command> make_doctor() {
  return make_not_implemented("doctor", "Check what this host can run, and why");
}

}  // namespace avm::cmd
