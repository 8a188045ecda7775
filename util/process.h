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
#include "util/platform.h"

namespace avm {

// The process table, through util/platform.h (the one place that knows the OS).
// A zombie counts as exited: kill(pid, 0) would call it alive.
inline ProcState proc_state(pid_t pid) { return platform::process_state(pid); }
inline bool proc_alive(pid_t pid) {
  auto s = proc_state(pid);
  return s == ProcState::Running || s == ProcState::Stopped;
}
// When the process started, to tell a recycled pid from the process we
// started. nullopt if gone.
inline std::optional<unsigned long long> proc_start_time(pid_t pid) { return platform::process_start_time(pid); }
// argv[0] of the process; empty if gone.
std::string proc_exe_name(pid_t pid);

// Waits until `pid` has exited (gone or zombie), any process, child or not:
// woken by platform::exit_watch, or polling the table where there is none.
// Returns false on timeout.
bool wait_for_exit(pid_t pid, std::chrono::milliseconds timeout);

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
  // After it, the child's whole process group is killed (SIGKILL).
  std::optional<std::chrono::milliseconds> timeout;
  // Once the child has exited (or been killed), output is read until the
  // pipes close or this long: a process that left the group and holds them
  // cannot keep run() waiting.
  std::chrono::milliseconds grace{500};
};

// Runs argv[0] (looked up in PATH) in its own process group to completion
// and captures its output. Throws only when the program cannot be started.
RunResult run(const std::vector<std::string>& argv, const RunOptions& opts = {});

// Path of `name` in $PATH, or nullopt.
std::optional<std::filesystem::path> find_program(const std::string& name);

// A child process (the leader of its own process group) that is killed
// (SIGKILL, with its group) and reaped when its owner goes, unless
// released. Nix's `Pid`.
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
  // Signals the child's process group (the child and what it started and
  // left in the group).
  void kill_group(int sig);

 private:
  void kill_and_reap() noexcept;
  pid_t pid_ = -1;
};

struct SpawnOptions {
  std::filesystem::path cwd;
  std::vector<std::string> env;  // "K=V" added to (or replacing in) our environment
  bool exact_env = false;        // the environment is `env` alone
  int stdin_fd = -1;             // -1: /dev/null
  int stdout_fd = -1;            // -1: inherit
  int stderr_fd = -1;            // -1: inherit
  bool new_session = false;      // setsid() (otherwise only a new process group)
  // false: the child stays in our process group, so a Ctrl+C at the terminal
  // reaches it as it reaches us (a long foreground job such as an image build).
  bool own_group = true;
  // Double fork: the process is reparented away from us (not our child) and
  // outlives us, in its own session. Only spawn_detached takes it.
  bool detach = false;
  std::vector<int> keep_fds;     // the only fds besides 0-2 the program inherits
  std::optional<mode_t> umask;
  bool no_new_privs = false;     // PR_SET_NO_NEW_PRIVS: exec cannot gain privileges
};

// A started process: its pid and start time (to tell a recycled pid
// from it later).
struct ProcessId {
  pid_t pid = -1;
  unsigned long long start_time = 0;
};

// The one way to start a process. argv[0] is looked up in PATH unless it
// holds a '/'. Returns once exec has succeeded; throws avm::Error naming the
// program and exec's errno when it cannot be run. Only async-signal-safe
// calls happen between fork and exec.
Child spawn(const std::vector<std::string>& argv, const SpawnOptions& opts = {});
// The same with opts.detach: the process is not our child and nothing owns it.
ProcessId spawn_detached(const std::vector<std::string>& argv, SpawnOptions opts);

// Decodes a waitpid status into an exit code (128+signal when signalled).
int exit_code_of(int wait_status);

}  // namespace avm
