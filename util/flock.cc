#include "util/flock.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

#include "util/error.h"
#include "util/platform.h"

namespace avm {

namespace {

Fd open_lock_file(const std::filesystem::path& path) {
  Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) throw_errno("cannot open lock file " + path.string());
  return fd;
}

}  // namespace

std::optional<FileLock> FileLock::try_acquire(const std::filesystem::path& path) {
  Fd fd = open_lock_file(path);
  if (!platform::try_lock_exclusive(fd.get(), path)) return std::nullopt;
  return FileLock(std::move(fd), path);
}

FileLock FileLock::acquire(const std::filesystem::path& path,
                           std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto backoff = std::chrono::milliseconds(5);
  for (;;) {
    if (auto lock = try_acquire(path)) return std::move(*lock);
    if (std::chrono::steady_clock::now() >= deadline)
      throw Error("timed out after " + std::to_string(timeout.count() / 1000) +
                      "s waiting for the lock " + path.string(),
                  "another agent-vm command is working on it; wait for it to finish");
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(100));
  }
}

void FileLock::make_inheritable() {
  int flags = ::fcntl(fd_.get(), F_GETFD);
  if (flags < 0 || ::fcntl(fd_.get(), F_SETFD, flags & ~FD_CLOEXEC) != 0)
    throw_errno("fcntl " + path_.string());
}

}  // namespace avm
