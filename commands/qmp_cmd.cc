// agent-vm qmp: not implemented yet; replaced when its issue lands.
#include "commands/command.h"

namespace avm::cmd {

std::unique_ptr<Command> make_qmp() {
  return make_not_implemented("qmp", "Send one QMP command to a QEMU monitor socket (or stream events)");
}

}  // namespace avm::cmd
