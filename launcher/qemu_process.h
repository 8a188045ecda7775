// Starting QEMU so that it outlives us, and recognising it again later.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "util/process.h"

namespace avm::launcher {

// The pid and its /proc start time (which tells a reused pid apart).
using DetachedProcess = avm::ProcessId;

// The environment a VM's QEMU gets: PATH and the locale, nothing else. A
// secret in the caller's environment (ANTHROPIC_API_KEY) must not live on
// in a long-running process that does not need it.
std::vector<std::string> vm_environment();

// Starts argv in its own session, reparented away from us (double fork), with
// stdin from /dev/null and stdout+stderr appended to `log`, and exactly the
// environment `env` ("K=V"), umask 077 and no_new_privs: avm::spawn_detached
// with the log opened. Only the fds in `inherit` (and 0-2) stay open in it.
// Returns once exec has succeeded; throws avm::Error naming the program
// and exec's error if it cannot be executed.
DetachedProcess start_detached(const std::vector<std::string>& argv,
                               const std::filesystem::path& log,
                               const std::vector<int>& inherit = {},
                               const std::vector<std::string>& env = vm_environment());

// True when `pid` is alive, is the same process that was started (when
// `start_time` is given) and its command line carries `-name <vm_name>`.
// The session folder is writable by the guest, so a recorded pid is never
// signalled before this says yes.
bool is_vm_process(pid_t pid, const std::string& vm_name,
                   std::optional<unsigned long long> start_time = std::nullopt);

// The pids of every live process whose command line carries `-name <vm_name>`
// (for finding a QEMU whose pid was never recorded).
std::vector<pid_t> find_vm_processes(const std::string& vm_name);

}  // namespace avm::launcher
