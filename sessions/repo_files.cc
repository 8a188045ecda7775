#include "sessions/repo_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "util/error.h"
#include "util/fd.h"

namespace avm::sessions {

namespace fs = std::filesystem;

namespace repo_files {

Kind kind_of(const fs::path& p) {
  struct stat st {};
  if (::lstat(p.c_str(), &st) != 0) return Kind::Missing;
  if (S_ISDIR(st.st_mode)) return Kind::Dir;
  if (S_ISREG(st.st_mode)) return Kind::File;
  if (S_ISLNK(st.st_mode)) return Kind::Link;
  return Kind::Other;
}

std::string read_nofollow(const fs::path& p) {
  Fd fd(::open(p.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (!fd) throw Error("cannot read " + p.string() + ": " + std::strerror(errno));
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error("cannot read " + p.string() + ": " + std::strerror(errno));
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

std::string link_target(const fs::path& p) {
  std::error_code ec;
  fs::path t = fs::read_symlink(p, ec);
  return ec ? std::string("?") : t.string();
}

std::vector<fs::path> git_dirs(const fs::path& gitdir) {
  std::vector<fs::path> out{gitdir};
  fs::path modules = gitdir / "modules";
  if (kind_of(modules) != Kind::Dir) return out;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(modules, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_directory(ec) || it->is_symlink(ec)) continue;
    if (kind_of(it->path() / "HEAD") == Kind::File) out.push_back(it->path());
  }
  return out;
}

std::vector<std::string> names_in(const fs::path& dir) {
  std::error_code ec;
  std::vector<std::string> names;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    names.push_back(it->path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::string label(const fs::path& gitdir, const fs::path& dir, const std::string& what) {
  if (dir == gitdir) return what;
  return dir.lexically_relative(gitdir).string() + "/" + what;
}

RepoState read_repo_state(const fs::path& workdir) {
  RepoState s;
  fs::path gitdir = workdir / ".git";
  Kind k = kind_of(gitdir);
  if (k == Kind::Missing) return s;
  if (k != Kind::Dir) {
    s.other.push_back({"git-dir", ".git", k == Kind::Link ? "a symbolic link to " + link_target(gitdir) +
                                                               ": git would work on another repository"
                                                         : "a file pointing git at another repository"});
    return s;
  }
  for (const auto& dir : git_dirs(gitdir)) {
    fs::path cfg = dir / "config";
    switch (kind_of(cfg)) {
      case Kind::File:
        for (auto& e : parse_git_config(read_nofollow(cfg))) {
          if (dir != gitdir) e.key = label(gitdir, dir, e.key);
          s.config.push_back(std::move(e));
        }
        break;
      case Kind::Missing: break;
      default:
        s.other.push_back({"git-config", label(gitdir, dir, "config"),
                           "not a plain file (a link to " + link_target(cfg) + "?): git would read it"});
    }
    fs::path hooks = dir / "hooks";
    Kind hk = kind_of(hooks);
    if (hk == Kind::Dir) {
      for (auto& n : names_in(hooks)) s.hooks.push_back(dir == gitdir ? n : label(gitdir, dir, "hooks/" + n));
    } else if (hk != Kind::Missing) {
      s.other.push_back({"git-hook", label(gitdir, dir, "hooks"), "not a folder: git would run hooks from it"});
    }
    if (kind_of(dir / "commondir") != Kind::Missing)
      s.other.push_back({"git-dir", label(gitdir, dir, "commondir"), "points git at another repository's refs"});
    if (kind_of(dir / "objects" / "info" / "alternates") != Kind::Missing)
      s.other.push_back({"git-dir", label(gitdir, dir, "objects/info/alternates"),
                         "makes git read objects from other folders"});
  }
  return s;
}

}  // namespace repo_files

std::vector<Warning> repo_traps(const SessionPaths& paths) {
  repo_files::RepoState st = repo_files::read_repo_state(paths.repo());
  std::vector<Warning> w = classify({}, st.config, st.hooks);
  w.insert(w.end(), st.other.begin(), st.other.end());
  return w;
}

}  // namespace avm::sessions
