#include "util/remove_tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "util/error.h"
#include "util/fd.h"

namespace avm {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail(const fs::path& path, int err) { throw_errno("cannot remove " + path.string(), err); }

void remove_entry(int parent, const std::string& name, const fs::path& path);

// The names in the directory open as `dir` (read through a dup, so `dir`
// stays usable for the *at calls).
std::vector<std::string> entries(int dir, const fs::path& path) {
  int copy = ::fcntl(dir, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) fail(path, errno);
  std::unique_ptr<DIR, int (*)(DIR*)> d(::fdopendir(copy), ::closedir);
  if (!d) {
    int err = errno;
    ::close(copy);
    fail(path, err);
  }
  std::vector<std::string> names;
  for (;;) {
    errno = 0;
    dirent* e = ::readdir(d.get());
    if (!e) break;
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    names.emplace_back(e->d_name);
  }
  if (errno != 0) fail(path, errno);
  return names;
}

// Empties the directory open as `dir`.
void empty_dir(int dir, const fs::path& path) {
  struct stat st {};
  if (::fstat(dir, &st) != 0) fail(path, errno);
  // A read-only folder (git makes some) cannot be emptied until it is writable.
  if ((st.st_mode & 0700) != 0700 && ::fchmod(dir, (st.st_mode & 07777) | 0700) != 0) fail(path, errno);
  for (const auto& name : entries(dir, path)) remove_entry(dir, name, path / name);
}

void remove_entry(int parent, const std::string& name, const fs::path& path) {
  struct stat st {};
  if (::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return;
    fail(path, errno);
  }
  if (S_ISDIR(st.st_mode)) {
    Fd dir(::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (dir) {
      empty_dir(dir.get(), path);
      if (::unlinkat(parent, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) fail(path, errno);
      return;
    }
    if (errno == ENOENT) return;
    // Replaced by a symlink or a file since fstatat: unlinked below.
    if (errno != ELOOP && errno != ENOTDIR) fail(path, errno);
  }
  if (::unlinkat(parent, name.c_str(), 0) != 0 && errno != ENOENT) fail(path, errno);
}

}  // namespace

void remove_tree(const fs::path& path_in) {
  fs::path path = path_in;
  if (path.has_relative_path() && path.filename().empty()) path = path.parent_path();  // "a/b/"
  if (!path.has_relative_path()) throw Error("refusing to remove " + path_in.string());
  fs::path parent_path = path.has_parent_path() ? path.parent_path() : fs::path(".");
  Fd parent(::open(parent_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!parent) {
    if (errno == ENOENT) return;
    fail(path, errno);
  }
  std::string name = path.filename().string();
  if (name == "." || name == "..") throw Error("refusing to remove " + path_in.string(), "name the folder itself");
  remove_entry(parent.get(), name, path);
}

}  // namespace avm
