#include "launcher/qemu_process.h"

#include <fcntl.h>

#include <cstdlib>

#include "util/error.h"
#include "util/fd.h"
#include "util/file.h"
#include "util/platform.h"
#include "util/process.h"
#include "util/strings.h"

namespace avm::launcher {

namespace fs = std::filesystem;

namespace {

bool has_name(const std::vector<std::string>& argv, const std::string& vm_name) {
  for (size_t i = 0; i + 1 < argv.size(); ++i)
    if (argv[i] == "-name" && (argv[i + 1] == vm_name || argv[i + 1].starts_with(vm_name + ",")))
      return true;
  return false;
}

}  // namespace

std::vector<std::string> vm_environment() {
  std::vector<std::string> env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"};
  for (const char* k : {"LANG", "LC_ALL", "TZ"})
    if (const char* v = std::getenv(k)) env.push_back(std::string(k) + "=" + v);
  return env;
}

DetachedProcess start_detached(const std::vector<std::string>& argv, const fs::path& log,
                               const std::vector<int>& inherit, const std::vector<std::string>& env) {
  Fd logfd(::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!logfd) throw_errno("cannot open " + log.string());
  SpawnOptions so;
  so.env = env;
  so.exact_env = true;
  so.stdout_fd = logfd.get();
  so.stderr_fd = logfd.get();
  so.keep_fds = inherit;
  so.umask = 077;
  // Nothing it runs may gain privileges through exec (setuid programs).
  so.no_new_privs = true;
  try {
    return spawn_detached(argv, so);
  } catch (const Error& e) {
    throw Error(e.what(), "install it (QEMU: sudo apt-get install qemu-system-x86)");
  }
}

bool is_vm_process(pid_t pid, const std::string& vm_name,
                   std::optional<unsigned long long> start_time) {
  if (pid <= 1 || !proc_alive(pid)) return false;
  if (start_time && *start_time != 0 && proc_start_time(pid) != start_time) return false;
  return has_name(platform::process_argv(pid), vm_name);
}

std::vector<pid_t> find_vm_processes(const std::string& vm_name) {
  std::vector<pid_t> out;
  for (pid_t pid : platform::process_ids())
    if (proc_alive(pid) && has_name(platform::process_argv(pid), vm_name)) out.push_back(pid);
  return out;
}

}  // namespace avm::launcher
