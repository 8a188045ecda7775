// What agent-vm asks of the host's operating system beyond POSIX: the
// process table, exit and file watching, child hardening, locks, who listens
// on a port, and host facts. One implementation per OS, chosen by CMake
// (util/platform_linux.cc); docs/platforms.md says what a macOS one needs.
// Nothing outside it reads /proc or calls pidfd, inotify, prctl or flock.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "util/fd.h"

namespace avm {

enum class ProcState { Running, Stopped, Zombie, Gone };

namespace platform {

// --- the process table (any process, not only our children) -------------
// Its state; a zombie counts as exited (kill(pid, 0) would call it alive).
ProcState process_state(pid_t pid);
// When it started, in an OS-defined unit that only has to tell a recycled pid
// from the process seen before (Linux: field 22 of /proc/PID/stat, clock
// ticks since boot). nullopt when gone.
std::optional<unsigned long long> process_start_time(pid_t pid);
// Its memory in KiB: proportional set size (shared pages divided among their
// users) and resident set size (Linux: /proc/PID/smaps_rollup). nullopt when
// gone or unreadable.
struct ProcessMemory {
  unsigned long long pss_kib = 0, rss_kib = 0;
};
std::optional<ProcessMemory> process_memory(pid_t pid);
// Every process's pid (those this user may see).
std::vector<pid_t> process_ids();
// Its argv; empty when gone or unreadable.
std::vector<std::string> process_argv(pid_t pid);
// The running executable's own path; empty when unknown. A binary replaced
// while it runs (an upgrade, a rebuild) is the file now at its path: what it
// starts later (QEMU's guestfwd helpers, a detached refill) runs that one.
std::filesystem::path self_exe();
// /proc/PID/exe's text without the " (deleted)" the kernel adds once the
// file was replaced or removed.
std::string live_exe_path(std::string link);

// --- waiting ----------------------------------------------------------------
// An fd that polls readable once `pid` has exited, child or not (Linux: a
// pidfd). Invalid, with errno ESRCH when the process is already gone or
// ENOSYS when the kernel cannot watch it; callers then poll the table.
Fd exit_watch(pid_t pid);
// An fd that polls readable when a file in `dir` is created or written
// (Linux: inotify); read_dir_watch consumes what it reported.
Fd watch_dir(const std::filesystem::path& dir);
void read_dir_watch(int fd);

// --- a child, between fork and exec: async-signal-safe, return 0 or errno -----
// exec may not gain privileges (setuid programs) from now on.
int forbid_new_privileges() noexcept;
// Every fd from `first` up is marked close-on-exec; errno when the kernel
// cannot, and the caller walks the fds itself.
int cloexec_from(int first) noexcept;

// --- locks ------------------------------------------------------------------
// An exclusive whole-file advisory lock on the open file description `fd`,
// without waiting: true when held, false when another description holds it.
// It is inherited with the fd and released when the last copy closes
// (Linux: flock(2)). Throws avm::Error on any other failure.
bool try_lock_exclusive(int fd, const std::filesystem::path& path);

// --- ports --------------------------------------------------------------------
// Who listens on TCP `port` (any local address): nullopt when nobody does as
// far as can be told, else "pid N, NAME", or "" when the owner is not visible
// (Linux: /proc/net/tcp{,6} and /proc/*/fd).
std::optional<std::string> tcp_listener(std::uint16_t port);

// --- host facts -----------------------------------------------------------------
// Changes at every boot of the host (Linux: /proc/sys/kernel/random/boot_id);
// empty when unknown.
std::string boot_id();
// The CPU's TSC ticks at a constant rate (Linux: constant_tsc in /proc/cpuinfo).
bool constant_tsc();
// QEMU can confine itself here (`-sandbox on` needs seccomp, Linux only); the
// QEMU binary is still asked whether it was built with it.
bool qemu_sandbox_possible();

}  // namespace platform
}  // namespace avm
