// A session repo's .git read as data, never following a link and never
// through git or libgit2 (which would read the config the guest wrote and
// act on it): its config files' text, its hooks, and what points git
// elsewhere (commondir, alternates, a .git that is a link or a file).
// sessions/workback_rules.h judges what is read here; defuse
// (sessions/workback.h) removes it.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "sessions/store.h"
#include "sessions/workback_rules.h"

namespace avm::sessions {

namespace repo_files {

enum class Kind { Missing, Dir, File, Link, Other };
// What `p` itself is (lstat): a link is Link, whatever it points at.
Kind kind_of(const std::filesystem::path& p);
// A regular file's bytes, refusing symlinks (O_NOFOLLOW).
std::string read_nofollow(const std::filesystem::path& p);
// Where the link `p` points, or "?".
std::string link_target(const std::filesystem::path& p);
// Git folders of a session repo: .git itself and its submodules' folders
// (.git/modules/...), each with config and hooks git would use there.
std::vector<std::filesystem::path> git_dirs(const std::filesystem::path& gitdir);
// The names in folder `dir`, sorted (none when it cannot be read).
std::vector<std::string> names_in(const std::filesystem::path& dir);
// `what` in `dir`, named relative to .git for a submodule's folder.
std::string label(const std::filesystem::path& gitdir, const std::filesystem::path& dir, const std::string& what);

struct RepoState {
  std::vector<ConfigEntry> config;
  std::vector<std::string> hooks;
  std::vector<Warning> other;  // symlinked config or hooks, commondir, alternates, a .git file
};
// Everything of the above in `workdir`/.git.
RepoState read_repo_state(const std::filesystem::path& workdir);

}  // namespace repo_files

// The session repo's config entries that name a program, its live hooks and
// other redirections (commondir, alternates) as warnings. Reads data only;
// safe while the VM runs.
std::vector<Warning> repo_traps(const SessionPaths& paths);

}  // namespace avm::sessions
