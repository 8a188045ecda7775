// Subcommands whose implementation has not landed yet. Each moves to its own
// file when it is built.
#include "commands/command.h"

namespace avm::cmd {

std::unique_ptr<Command> make_spawn() {
  return make_not_implemented("spawn", "Create a session: clone a repository and boot its VM");
}
std::unique_ptr<Command> make_list() {
  return make_not_implemented("list", "List sessions with their observed state");
}
std::unique_ptr<Command> make_attach() {
  return make_not_implemented("attach", "Open a terminal on a session's agent (tmux over SSH)");
}
std::unique_ptr<Command> make_stop() {
  return make_not_implemented("stop", "Press the VM's power button and wait for it to shut down");
}
std::unique_ptr<Command> make_resume() {
  return make_not_implemented("resume", "Boot a new VM on a stopped session; the agent continues");
}
std::unique_ptr<Command> make_rm() {
  return make_not_implemented("rm", "Delete a session and its folder");
}
std::unique_ptr<Command> make_logs() {
  return make_not_implemented("logs", "Show a session's serial console log");
}
std::unique_ptr<Command> make_exec() {
  return make_not_implemented("exec", "Run one command in a session's guest; its exit code is passed through");
}
std::unique_ptr<Command> make_image() {
  return make_not_implemented("image", "Build, list and import guest images");
}
std::unique_ptr<Command> make_doctor() {
  return make_not_implemented("doctor", "Check what this host can run, and why");
}
std::unique_ptr<Command> make_qmp() {
  return make_not_implemented("qmp", "Send one QMP command to a QEMU monitor socket (or stream events)");
}
std::unique_ptr<Command> make_qga() {
  return make_not_implemented("qga", "Send one command to a QEMU guest agent socket");
}

}  // namespace avm::cmd
