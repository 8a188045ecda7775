// Advisory whole-file locks (platform::try_lock_exclusive: flock on Linux).
// The lock lives as long as the open file
// description: held by this object, or by a child that inherited the fd.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>

#include "util/fd.h"

namespace avm {

class FileLock {
 public:
  // Blocks until the exclusive lock is held, or throws after `timeout`.
  static FileLock acquire(const std::filesystem::path& path,
                          std::chrono::milliseconds timeout);
  // Returns nullopt at once when another open file description holds it.
  static std::optional<FileLock> try_acquire(const std::filesystem::path& path);

  FileLock(FileLock&&) noexcept = default;
  FileLock& operator=(FileLock&&) noexcept = default;

  int fd() const noexcept { return fd_.get(); }
  const std::filesystem::path& path() const noexcept { return path_; }
  // Lets a spawned child inherit the lock (clears FD_CLOEXEC).
  void make_inheritable();

 private:
  FileLock(Fd fd, std::filesystem::path path) : fd_(std::move(fd)), path_(std::move(path)) {}
  Fd fd_;
  std::filesystem::path path_;
};

}  // namespace avm
