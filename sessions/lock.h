// The per-session lock: serialises commands on one session; commands on
// different sessions never wait on each other (one lock file per session).
// The holder records who it is, so a waiter that gives up can say which
// command is in the way.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

#include "util/flock.h"

namespace avm::sessions {

// How long a command waits for a busy session by default.
inline constexpr std::chrono::milliseconds kLockTimeout{10'000};

// What the holder of a lock wrote into it.
struct LockHolder {
  pid_t pid = 0;
  std::string command;  // its argv, joined
  std::string since;    // UTC ISO-8601
};

class SessionLock {
 public:
  // Waits up to `timeout` for the lock file `path` of session `id`. On timeout
  // throws avm::Error naming the holder ("pid 4121, agent-vm stop k3f9, since
  // ..."). A lock file removed while waiting (the session was removed) is
  // noticed: the lock is taken on the file that is there now.
  static SessionLock acquire(const std::filesystem::path& path, std::string id,
                             std::chrono::milliseconds timeout);
  // nullopt at once when another command holds it.
  static std::optional<SessionLock> try_acquire(const std::filesystem::path& path,
                                                std::string id);
  // The holder recorded in the lock file, if any.
  static std::optional<LockHolder> read_holder(const std::filesystem::path& path);

  SessionLock(SessionLock&& o) noexcept;
  SessionLock& operator=(SessionLock&& o) noexcept;
  SessionLock(const SessionLock&) = delete;
  SessionLock& operator=(const SessionLock&) = delete;
  ~SessionLock();

  const std::string& id() const noexcept { return id_; }
  const std::filesystem::path& path() const noexcept { return path_; }
  bool held() const noexcept { return lock_.has_value(); }
  int fd() const noexcept { return lock_ ? lock_->fd() : -1; }

  // Lets go now (also done by the destructor).
  void release() noexcept;
  // Removes the lock file while still holding it, for a session that is
  // being removed; waiters then lock a fresh file and find no session.
  void unlink_file() noexcept;

 private:
  SessionLock(FileLock lock, std::filesystem::path path, std::string id);
  std::optional<FileLock> lock_;
  std::filesystem::path path_;
  std::string id_;
};

}  // namespace avm::sessions
