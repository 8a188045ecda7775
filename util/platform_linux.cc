// util/platform.h on Linux: /proc, pidfd, inotify, prctl, close_range, flock.
#include "util/platform.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <sstream>

#include "util/error.h"
#include "util/file.h"
#include "util/strings.h"

namespace avm::platform {

namespace fs = std::filesystem;

namespace {

std::optional<std::string> read_proc(const std::string& path) {
  try {
    return read_file_if_exists(path);
  } catch (const Error&) {
    return std::nullopt;  // ESRCH while reading: gone
  }
}

// Fields of /proc/PID/stat after "pid (comm) "; comm may hold spaces and ')'.
std::optional<std::vector<std::string>> stat_fields(pid_t pid) {
  auto stat = read_proc("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return std::nullopt;
  auto close = stat->rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::vector<std::string> fields;
  std::string cur;
  for (size_t i = close + 2; i < stat->size(); ++i) {
    char c = (*stat)[i];
    if (c == ' ' || c == '\n') {
      if (!cur.empty()) fields.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) fields.push_back(std::move(cur));
  return fields;
}

// The socket inode listening on `port` (any local address), from /proc/net/tcp{,6}.
std::optional<unsigned long> listening_inode(std::uint16_t port) {
  for (const char* file : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    auto text = read_proc(file);
    if (!text) continue;
    std::istringstream in(*text);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream f(line);
      std::string sl, local, remote, st, queues, tr, retr, uid, timeout, inode;
      f >> sl >> local >> remote >> st >> queues >> tr >> retr >> uid >> timeout >> inode;
      auto colon = local.rfind(':');
      if (colon == std::string::npos || st != "0A") continue;  // 0A = LISTEN
      if (std::stoul(local.substr(colon + 1), nullptr, 16) != port) continue;
      return std::stoul(inode);
    }
  }
  return std::nullopt;
}

// The process holding socket `inode`, as "pid N, name".
std::string socket_owner(unsigned long inode) {
  std::string want = "socket:[" + std::to_string(inode) + "]";
  DIR* proc = ::opendir("/proc");
  if (!proc) return {};
  std::string found;
  while (dirent* e = ::readdir(proc)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    fs::path fds = fs::path("/proc") / e->d_name / "fd";
    std::error_code ec;
    for (auto it = fs::directory_iterator(fds, ec); !ec && it != fs::directory_iterator();
         it.increment(ec)) {
      std::error_code ec2;
      if (fs::read_symlink(it->path(), ec2).string() == want) {
        std::string comm = trim(read_proc(fs::path("/proc") / e->d_name / "comm").value_or(""));
        found = "pid " + std::string(e->d_name) + (comm.empty() ? "" : ", " + comm);
        break;
      }
    }
    if (!found.empty()) break;
  }
  ::closedir(proc);
  return found;
}

}  // namespace

ProcState process_state(pid_t pid) {
  if (pid <= 0) return ProcState::Gone;
  auto f = stat_fields(pid);
  if (!f || f->empty()) return ProcState::Gone;
  switch ((*f)[0][0]) {
    case 'Z':
    case 'X':
    case 'x':
      return ProcState::Zombie;
    case 'T':
    case 't':
      return ProcState::Stopped;
    default:
      return ProcState::Running;
  }
}

std::optional<ProcessMemory> process_memory(pid_t pid) {
  auto text = read_proc("/proc/" + std::to_string(pid) + "/smaps_rollup");
  if (!text) return std::nullopt;
  ProcessMemory m;
  bool pss = false, rss = false;
  auto field = [&](std::string_view name, unsigned long long& out) {
    auto at = text->find(name);
    if (at == std::string::npos || (at > 0 && (*text)[at - 1] != '\n')) return false;
    out = std::strtoull(text->c_str() + at + name.size(), nullptr, 10);
    return true;
  };
  pss = field("Pss:", m.pss_kib);
  rss = field("Rss:", m.rss_kib);
  if (!pss || !rss) return std::nullopt;
  return m;
}

std::optional<unsigned long long> process_start_time(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  auto f = stat_fields(pid);
  // starttime is field 22 of stat; fields here start at field 3 (state).
  if (!f || f->size() < 20) return std::nullopt;
  return std::stoull((*f)[19]);
}

std::vector<pid_t> process_ids() {
  std::vector<pid_t> out;
  DIR* d = ::opendir("/proc");
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    out.push_back(static_cast<pid_t>(std::atol(e->d_name)));
  }
  ::closedir(d);
  return out;
}

std::vector<std::string> process_argv(pid_t pid) {
  auto raw = read_proc("/proc/" + std::to_string(pid) + "/cmdline");
  if (!raw || raw->empty()) return {};
  if (raw->back() == '\0') raw->pop_back();
  return split(*raw, '\0');
}

std::string live_exe_path(std::string link) {
  constexpr std::string_view kDeleted = " (deleted)";
  if (link.size() > kDeleted.size() && link.compare(link.size() - kDeleted.size(), kDeleted.size(), kDeleted) == 0)
    link.resize(link.size() - kDeleted.size());
  return link;
}

fs::path self_exe() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : fs::path(live_exe_path(p.string()));
}

Fd exit_watch(pid_t pid) {
#ifdef SYS_pidfd_open
  return Fd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
#else
  (void)pid;
  errno = ENOSYS;
  return Fd();
#endif
}

Fd watch_dir(const fs::path& dir) {
  Fd in(::inotify_init1(IN_CLOEXEC));
  if (!in) throw_errno("inotify_init1");
  if (::inotify_add_watch(in.get(), dir.c_str(), IN_MODIFY | IN_CREATE) < 0)
    throw_errno("cannot watch " + dir.string());
  return in;
}

void read_dir_watch(int fd) {
  char ev[4096];
  ssize_t n = ::read(fd, ev, sizeof ev);
  (void)n;
}

int forbid_new_privileges() noexcept {
  return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 ? 0 : errno;
}

int cloexec_from(int first) noexcept {
  return ::close_range(static_cast<unsigned>(first), ~0U, CLOSE_RANGE_CLOEXEC) == 0 ? 0 : errno;
}

bool try_lock_exclusive(int fd, const fs::path& path) {
  while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) return false;
    throw_errno("cannot lock " + path.string());
  }
  return true;
}

std::optional<std::string> tcp_listener(std::uint16_t port) {
  auto inode = listening_inode(port);
  if (!inode) return std::nullopt;
  return socket_owner(*inode);
}

std::string boot_id() {
  return trim(read_proc("/proc/sys/kernel/random/boot_id").value_or(""));
}

bool constant_tsc() {
  auto cpuinfo = read_proc("/proc/cpuinfo");
  return cpuinfo && cpuinfo->find(" constant_tsc") != std::string::npos;
}

bool qemu_sandbox_possible() { return true; }

}  // namespace avm::platform
