#include "sessions/lock.h"

#include <sys/stat.h>
#include <unistd.h>

#include <thread>

#include "sessions/meta.h"
#include "util/error.h"
#include "util/file.h"
#include "util/platform.h"
#include "util/strings.h"
#include "util/timestamp.h"

namespace avm::sessions {

namespace fs = std::filesystem;
using namespace std::chrono;

namespace {

std::string self_command() {
  std::string cmd;
  for (const auto& arg : platform::process_argv(::getpid())) cmd += (cmd.empty() ? "" : " ") + arg;
  cmd = trim(cmd);
  if (cmd.size() > 200) cmd = cmd.substr(0, 200) + "...";
  return cmd;
}

// True when `fd` is the file at `path` now: it was not unlinked or replaced
// between open and flock.
bool still_linked(int fd, const fs::path& path) {
  struct stat a {}, b {};
  if (::fstat(fd, &a) != 0 || ::stat(path.c_str(), &b) != 0) return false;
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

void record_holder(int fd) {
  std::string text = "pid=" + std::to_string(::getpid()) + "\ncommand=" + self_command() +
                     "\nsince=" + utc_now_iso8601() + "\n";
  // Best effort: the lock is what matters; the note only improves messages.
  if (::ftruncate(fd, 0) == 0) {
    ssize_t n = ::pwrite(fd, text.data(), text.size(), 0);
    (void)n;
  }
}

}  // namespace

SessionLock::SessionLock(FileLock lock, fs::path path, std::string id)
    : lock_(std::move(lock)), path_(std::move(path)), id_(std::move(id)) {}

SessionLock::SessionLock(SessionLock&& o) noexcept
    : lock_(std::move(o.lock_)), path_(std::move(o.path_)), id_(std::move(o.id_)) {
  o.lock_.reset();
}

SessionLock& SessionLock::operator=(SessionLock&& o) noexcept {
  if (this != &o) {
    release();
    lock_ = std::move(o.lock_);
    o.lock_.reset();
    path_ = std::move(o.path_);
    id_ = std::move(o.id_);
  }
  return *this;
}

SessionLock::~SessionLock() { release(); }

std::optional<SessionLock> SessionLock::try_acquire(const fs::path& path, std::string id) {
  for (;;) {
    auto lock = FileLock::try_acquire(path);
    if (!lock) return std::nullopt;
    if (!still_linked(lock->fd(), path)) continue;  // removed under us: lock the new one
    record_holder(lock->fd());
    return SessionLock(std::move(*lock), path, std::move(id));
  }
}

SessionLock SessionLock::acquire(const fs::path& path, std::string id, milliseconds timeout) {
  auto deadline = steady_clock::now() + timeout;
  auto backoff = milliseconds(5);
  for (;;) {
    if (auto lock = try_acquire(path, id)) return std::move(*lock);
    if (steady_clock::now() >= deadline) {
      std::string who = "another agent-vm command";
      std::string fix = "wait for it to finish, then try again";
      if (auto h = read_holder(path)) {
        who = "pid " + std::to_string(h->pid);
        if (!h->command.empty()) who += " (" + h->command + ")";
        if (!h->since.empty()) who += ", since " + h->since;
        fix += "; if it is stuck, stop it with: kill " + std::to_string(h->pid);
      }
      throw Error("session " + id + " is busy: " + who + " holds its lock (waited " +
                      human_duration_ms(timeout) + ")",
                  fix);
    }
    // flock has no event to await; back off briefly, bounded by the deadline.
    auto left = duration_cast<milliseconds>(deadline - steady_clock::now());
    std::this_thread::sleep_for(std::max(milliseconds(1), std::min(backoff, left)));
    backoff = std::min(backoff * 2, milliseconds(100));
  }
}

std::optional<LockHolder> SessionLock::read_holder(const fs::path& path) {
  std::optional<std::string> text;
  try {
    text = read_file_if_exists(path);
  } catch (const Error&) {
    return std::nullopt;
  }
  if (!text || text->empty()) return std::nullopt;
  LockHolder h;
  for (const auto& [k, v] : parse_key_values(*text)) {
    if (k == "pid") {
      try {
        h.pid = static_cast<pid_t>(std::stol(v));
      } catch (...) {
        return std::nullopt;
      }
    } else if (k == "command") {
      h.command = v;
    } else if (k == "since") {
      h.since = v;
    }
  }
  if (h.pid <= 0) return std::nullopt;
  return h;
}

void SessionLock::release() noexcept {
  if (!lock_) return;
  if (still_linked(lock_->fd(), path_)) {
    int r = ::ftruncate(lock_->fd(), 0);
    (void)r;
  }
  lock_.reset();
}

void SessionLock::unlink_file() noexcept {
  if (lock_ && still_linked(lock_->fd(), path_)) ::unlink(path_.c_str());
}

}  // namespace avm::sessions
