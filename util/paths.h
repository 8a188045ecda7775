// Where agent-vm keeps things on the host.
#pragma once

#include <filesystem>

namespace avm {

// $HOME, or the passwd entry's home.
std::filesystem::path home_dir();
// $AGENT_VM_HOME, default ~/.agent-vm.
std::filesystem::path agent_vm_home();
// $AGENT_VM_SESSIONS, default ~/.agent-vm/sessions.
std::filesystem::path sessions_dir();
// $AGENT_VM_IMAGES, default ~/.agent-vm/images.
std::filesystem::path images_dir();
// Runtime state shared by all sessions (locks): ~/.agent-vm/run.
std::filesystem::path runtime_dir();
// Cached host facts (the accelerator verdict): ~/.agent-vm/cache.
std::filesystem::path cache_dir();
// Read-only data shipped with agent-vm (guest scripts): $AGENT_VM_DATADIR,
// else <prefix>/share/agent-vm next to the running binary, else the source tree.
std::filesystem::path data_dir();
// The running executable.
std::filesystem::path self_exe();

}  // namespace avm
