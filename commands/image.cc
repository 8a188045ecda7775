// agent-vm image: not implemented yet; replaced when its issue lands.
#include "commands/command.h"

namespace avm::cmd {

std::unique_ptr<Command> make_image() {
  return make_not_implemented("image", "Build, list and import guest images");
}

}  // namespace avm::cmd
