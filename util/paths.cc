#include "util/paths.h"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>

#include "util/error.h"
#include "util/platform.h"

namespace avm {

namespace fs = std::filesystem;

namespace {

std::optional<fs::path> env_path(const char* name) {
  const char* v = std::getenv(name);
  if (v && *v) return fs::path(v);
  return std::nullopt;
}

}  // namespace

fs::path home_dir() {
  if (auto h = env_path("HOME")) return *h;
  if (const passwd* pw = ::getpwuid(::getuid()); pw && pw->pw_dir) return pw->pw_dir;
  throw Error("cannot tell the home directory", "set HOME");
}

fs::path agent_vm_home() { return env_path("AGENT_VM_HOME").value_or(home_dir() / ".agent-vm"); }
fs::path sessions_dir() { return env_path("AGENT_VM_SESSIONS").value_or(agent_vm_home() / "sessions"); }
fs::path images_dir() { return env_path("AGENT_VM_IMAGES").value_or(agent_vm_home() / "images"); }
fs::path runtime_dir() { return agent_vm_home() / "run"; }
fs::path cache_dir() { return agent_vm_home() / "cache"; }

fs::path self_exe() { return platform::self_exe(); }

fs::path data_dir() {
  if (auto d = env_path("AGENT_VM_DATADIR")) return *d;
  // Installed layout: <prefix>/bin/agent-vm and <prefix>/share/agent-vm.
  fs::path exe = self_exe();
  if (!exe.empty()) {
    fs::path installed = exe.parent_path().parent_path() / "share" / "agent-vm";
    if (fs::exists(installed / "guest")) return installed;
  }
  fs::path configured = AGENT_VM_INSTALL_DATADIR;
  if (fs::exists(configured / "guest")) return configured;
  // Running from a build tree: the sources hold the same files.
  return AGENT_VM_SOURCE_DIR;
}

}  // namespace avm
