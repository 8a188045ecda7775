// Processes: observing ones that are not our children (QEMU runs detached),
// and running short-lived helpers that are.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "util/fd.h"

namespace avm {

enum class ProcState { Running, Stopped, Zombie, Gone };
// Reads /proc/PID/stat. A zombie counts as exited: kill(pid, 0) would call it alive.
ProcState proc_state(pid_t pid);
inline bool proc_alive(pid_t pid) {
  auto s = proc_state(pid);
  return s == ProcState::Running || s == ProcState::Stopped;
}
// The process's start time (field 22 of /proc/PID/stat, in clock ticks since
// boot), to tell a recycled pid from the process we started. nullopt if gone.
std::optional<unsigned long long> proc_start_time(pid_t pid);
// argv[0] of the process, from /proc/PID/cmdline; empty if gone.
std::string proc_exe_name(pid_t pid);

// Waits until `pid` has exited (gone or zombie), using a pidfd so any
// process can be awaited, child or not. Returns false on timeout.
bool wait_for_exit(pid_t pid, std::chrono::milliseconds timeout);

// pidfd_open(2); an invalid Fd when the process is already gone.
Fd open_pidfd(pid_t pid);

struct RunResult {
  int exit_code = -1;  // 128+N when killed by signal N
  std::string out;     // stdout (and stderr when merged)
  std::string err;
};

struct RunOptions {
  std::filesystem::path cwd;
  std::vector<std::string> env;  // "K=V" added to (or replacing in) the environment
  std::string input;             // written to stdin
  bool merge_stderr = false;
  std::optional<std::chrono::milliseconds> timeout;  // killed (SIGKILL) after it
};

// Runs argv[0] (looked up in PATH) to completion and captures its output.
// Throws only when the program cannot be started.
RunResult run(const std::vector<std::string>& argv, const RunOptions& opts = {});

// Path of `name` in $PATH, or nullopt.
std::optional<std::filesystem::path> find_program(const std::string& name);

// A child process that is killed (SIGKILL) and reaped when its owner goes,
// unless released. Nix's `Pid`.
class Child {
 public:
  Child() = default;
  explicit Child(pid_t pid) : pid_(pid) {}
  Child(Child&& o) noexcept;
  Child& operator=(Child&& o) noexcept;
  ~Child();

  pid_t pid() const noexcept { return pid_; }
  pid_t release() noexcept;
  // Blocks; returns the exit code (128+signal when signalled).
  int wait();
  // Non-blocking; nullopt while running.
  std::optional<int> try_wait();
  void kill(int sig);

 private:
  pid_t pid_ = -1;
};

struct SpawnOptions {
  std::filesystem::path cwd;
  std::vector<std::string> env;  // added to the environment
  int stdin_fd = -1;             // -1: /dev/null
  int stdout_fd = -1;            // -1: inherit
  int stderr_fd = -1;            // -1: inherit
  bool new_session = false;      // setsid()
  std::vector<int> keep_fds;     // fds the child keeps (others are CLOEXEC anyway)
};
Child spawn(const std::vector<std::string>& argv, const SpawnOptions& opts = {});

// Decodes a waitpid status into an exit code (128+signal when signalled).
int exit_code_of(int wait_status);

}  // namespace avm
