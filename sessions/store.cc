#include "sessions/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include "sessions/handover.h"
#include "sessions/ids.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/file.h"
#include "util/paths.h"
#include "util/remove_tree.h"
#include "util/strings.h"

namespace avm::sessions {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kCreating = ".creating-";
constexpr std::string_view kRemoving = ".removing-";
constexpr int kCreateAttempts = 32;

void fsync_dir(const fs::path& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd) ::fsync(fd.get());
}

// rename(2) that refuses to replace an existing target (an empty folder
// would otherwise be replaced silently). Falls back to rename(2) where the
// filesystem lacks RENAME_NOREPLACE; the caller holds the id's lock then.
int rename_noreplace(const fs::path& from, const fs::path& to) {
#ifdef RENAME_NOREPLACE
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return 0;
  if (errno != EINVAL && errno != ENOSYS) return -1;
#endif
  struct stat st {};
  if (::lstat(to.c_str(), &st) == 0) {
    errno = EEXIST;
    return -1;
  }
  return ::rename(from.c_str(), to.c_str());
}

bool is_dir_nofollow(const fs::path& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// The id inside ".creating-<id>-XXXXXX" / ".removing-<id>-XXXXXX".
std::optional<std::string> leftover_id(std::string_view name) {
  std::string_view rest;
  if (name.starts_with(kCreating))
    rest = name.substr(kCreating.size());
  else if (name.starts_with(kRemoving))
    rest = name.substr(kRemoving.size());
  else
    return std::nullopt;
  auto dash = rest.rfind('-');
  if (dash == std::string_view::npos) return std::nullopt;
  std::string id(rest.substr(0, dash));
  if (!is_valid_id(id)) return std::nullopt;
  return id;
}

// Names of the session folders under root (valid ids, real directories).
std::vector<std::string> session_names(const fs::path& root) {
  std::vector<std::string> out;
  std::error_code ec;
  fs::directory_iterator it(root, ec);
  if (ec) {
    if (ec == std::errc::no_such_file_or_directory) return out;
    throw Error("cannot read the sessions folder " + root.string() + ": " + ec.message(),
                "check its permissions, or set AGENT_VM_SESSIONS to another folder");
  }
  for (const auto& e : it) {
    std::string name = e.path().filename().string();
    if (name.empty() || name[0] == '.' || !is_valid_id(name)) continue;
    if (!is_dir_nofollow(e.path())) continue;
    out.push_back(std::move(name));
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Removes root/.host/<id>, and root/.host itself once no session has one:
// a store without sessions holds nothing but its lock folder.
void remove_host_dir(const fs::path& root, const std::string& id) {
  remove_tree(root / ".host" / id);
  ::rmdir((root / ".host").c_str());  // fails, as it should, while not empty
}

std::string join_ids(const std::vector<std::string>& ids, std::size_t max) {
  std::string out;
  for (std::size_t i = 0; i < ids.size() && i < max; ++i) {
    if (i) out += ", ";
    out += ids[i];
  }
  if (ids.size() > max) out += " and " + std::to_string(ids.size() - max) + " more";
  return out;
}

}  // namespace

// ---- SessionStore ---------------------------------------------------------

SessionStore::SessionStore(fs::path root) : root_(std::move(root)) {}

SessionStore SessionStore::open_default() { return SessionStore(sessions_dir()); }

fs::path SessionStore::dir(std::string_view id) const {
  check_id(id);
  return root_ / std::string(id);
}

fs::path SessionStore::lock_path(std::string_view id) const {
  check_id(id);
  return root_ / ".locks" / (std::string(id) + ".lock");
}

bool SessionStore::exists(std::string_view id) const { return is_dir_nofollow(dir(id)); }

std::vector<SessionInfo> SessionStore::list() const {
  std::vector<SessionInfo> out;
  for (auto& name : session_names(root_)) {
    SessionInfo info;
    info.id = name;
    info.dir = root_ / name;
    try {
      Meta m = load_meta(SessionPaths(info.dir).meta());
      if (m.id != name) throw MetaCorrupt("it names session '" + m.id + "', not '" + name + "'");
      info.meta = std::move(m);
    } catch (const MetaUnknownSchema& e) {
      info.state = SessionInfo::State::UnknownSchema;
      info.problem = e.what();
    } catch (const MetaCorrupt& e) {
      info.state = SessionInfo::State::Corrupt;
      info.problem = e.what();
    } catch (const std::exception& e) {
      info.state = SessionInfo::State::Corrupt;
      info.problem = e.what();
    }
    out.push_back(std::move(info));
  }
  return out;
}

std::string SessionStore::resolve(std::string_view typed) const {
  std::string prefix = lower_ascii(trim(typed));
  check_id(prefix);
  if (exists(prefix)) return prefix;
  auto names = session_names(root_);
  std::vector<std::string> matches;
  for (auto& n : names)
    if (n.starts_with(prefix)) matches.push_back(n);
  if (matches.size() == 1) return matches[0];
  if (matches.empty()) {
    if (names.empty())
      throw Error("no session '" + prefix + "': there are no sessions in " + root_.string(),
                  "start one with agent-spawn");
    throw Error("no session '" + prefix + "'", "run agent-list to see the sessions");
  }
  throw Error("'" + prefix + "' matches " + std::to_string(matches.size()) +
                  " sessions: " + join_ids(matches, 10),
              "type more characters of the id");
}

Meta SessionStore::load(std::string_view id) const {
  if (!exists(id))
    throw Error("no session '" + std::string(id) + "'", "run agent-list to see the sessions");
  Meta m = load_meta(paths(id).meta());
  if (m.id != id) throw MetaCorrupt("it names session '" + m.id + "', not '" + std::string(id) + "'");
  return m;
}

SessionLock SessionStore::lock(std::string_view id, std::chrono::milliseconds timeout) const {
  fs::path lp = lock_path(id);
  if (!exists(id))
    throw Error("no session '" + std::string(id) + "'", "run agent-list to see the sessions");
  make_private_dir(lp.parent_path());
  SessionLock l = SessionLock::acquire(lp, std::string(id), timeout);
  // It may have been removed while we waited.
  if (!exists(id)) {
    l.unlink_file();
    throw Error("session '" + std::string(id) + "' was removed while this command waited for it");
  }
  return l;
}

void SessionStore::save(const SessionLock& held, const Meta& meta) const {
  if (!held.held() || held.id() != meta.id || held.path() != lock_path(meta.id))
    throw Error("internal: saving session " + meta.id + " without holding its lock");
  fs::path d = dir(meta.id);
  if (!is_dir_nofollow(d)) throw Error("no session '" + meta.id + "' to save");
  write_file_atomic(SessionPaths(d).meta(), format_meta(meta), 0600);
}

void SessionStore::remove(SessionLock& held) const {
  const std::string id = held.id();
  if (!held.held() || held.path() != lock_path(id))
    throw Error("internal: removing session " + id + " without holding its lock");
  fs::path d = dir(id);
  // dir() checked the id, so d is a direct child of the root; never follow it
  // if it is a symlink (remove the link, not what it points to).
  struct stat st {};
  if (::lstat(d.c_str(), &st) != 0) {
    if (errno != ENOENT) throw_errno("cannot remove " + d.string());
  } else if (!S_ISDIR(st.st_mode)) {
    if (::unlink(d.c_str()) != 0) throw_errno("cannot remove " + d.string());
  } else {
    // Rename aside first: the id disappears at once, and a crash halfway
    // leaves only a dot-folder that clean_stale() finishes.
    // mkdtemp reserves a unique empty folder; rename(2) replaces an empty one.
    std::string tmpl = (root_ / (std::string(kRemoving) + id + "-XXXXXX")).string();
    if (!::mkdtemp(tmpl.data())) throw_errno("cannot remove " + d.string());
    if (::rename(d.c_str(), tmpl.c_str()) != 0) {
      int err = errno;
      ::rmdir(tmpl.c_str());
      throw_errno("cannot remove " + d.string(), err);
    }
    fsync_dir(root_);
    remove_tree(tmpl);
  }
  // The host-only folder (the real API key) goes with it, and any link to it.
  for (const auto& vm_id : host_links(id)) unlink_host_dir(id, vm_id);
  remove_host_dir(root_, id);
  held.unlink_file();
  held.release();
}

fs::path SessionStore::host_dir(std::string_view id) const { return root_ / ".host" / std::string(id); }

void SessionStore::link_host_dir(std::string_view id, std::string_view vm_id) const {
  check_id(id);
  check_id(vm_id);
  fs::path link = host_dir(vm_id);
  remove_tree(link);
  std::error_code ec;
  fs::create_directory_symlink(std::string(id), link, ec);
  if (ec) throw Error("cannot link " + link.string() + " to the host-only folder of " + std::string(id) + ": " +
                      ec.message());
}

void SessionStore::unlink_host_dir(std::string_view id, std::string_view vm_id) const {
  fs::path link = host_dir(vm_id);
  std::error_code ec;
  if (!fs::is_symlink(fs::symlink_status(link, ec))) return;
  if (fs::read_symlink(link, ec) != fs::path(std::string(id)) || ec) return;
  fs::remove(link, ec);
}

std::vector<std::string> SessionStore::host_links(std::string_view id) const {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root_ / ".host", ec)) {
    std::string name = e.path().filename().string();
    std::error_code lec;
    if (!is_valid_id(name) || !fs::is_symlink(e.symlink_status(lec))) continue;
    if (fs::read_symlink(e.path(), lec) == fs::path(std::string(id)) && !lec) out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

void SessionStore::move_into(const SessionLock& held, const fs::path& live) const {
  const std::string id = held.id();
  if (!held.held() || held.path() != lock_path(id))
    throw Error("internal: moving session " + id + " without holding its lock");
  fs::path d = dir(id);
  if (!is_dir_nofollow(d)) throw Error("no session '" + id + "' to move");
  if (!is_dir_nofollow(live)) throw Error("internal: " + live.string() + " is not a folder");
  hand_over(d, live);
  if (::chmod(live.c_str(), 0700) != 0) throw_errno("cannot chmod " + live.string());
  // The old folder holds only its run/ now: aside, and the share in its place.
  std::string tmpl = (root_ / (std::string(kRemoving) + id + "-XXXXXX")).string();
  if (!::mkdtemp(tmpl.data())) throw_errno("cannot move " + d.string() + " aside");
  if (::rename(d.c_str(), tmpl.c_str()) != 0) {
    int err = errno;
    ::rmdir(tmpl.c_str());
    throw_errno("cannot move " + d.string() + " aside", err);
  }
  if (rename_noreplace(live, d) != 0) {
    int err = errno;
    ::rename(tmpl.c_str(), d.c_str());
    throw_errno("cannot move " + live.string() + " to " + d.string(), err);
  }
  fsync_dir(root_);
  remove_tree(tmpl);
}

void SessionStore::clean_stale() const {
  std::error_code ec;
  fs::directory_iterator it(root_, ec);
  if (ec) return;
  std::vector<std::pair<fs::path, std::string>> leftovers;
  for (const auto& e : it) {
    auto id = leftover_id(e.path().filename().string());
    if (id && is_dir_nofollow(e.path())) leftovers.emplace_back(e.path(), *id);
  }
  for (auto& [path, id] : leftovers) {
    fs::path lp = lock_path(id);
    if (!is_dir_nofollow(lp.parent_path())) continue;
    // Held: its creator or remover is still at work.
    auto l = SessionLock::try_acquire(lp, id);
    if (!l) continue;
    try {
      remove_tree(path);
    } catch (const Error&) {
      continue;  // best effort; the next create tries again
    }
    if (!exists(id)) l->unlink_file();
  }
}

NewSession SessionStore::create(std::optional<std::string> wanted) const {
  if (wanted) check_id(*wanted);
  try {
    make_private_dir(root_);
    make_private_dir(root_ / ".locks");
  } catch (const Error& e) {
    throw Error(e.what(), "make " + root_.string() +
                              " a folder you can write, or set AGENT_VM_SESSIONS to one");
  }
  clean_stale();
  for (int attempt = 0; attempt < kCreateAttempts; ++attempt) {
    std::string id = wanted ? *wanted : generate_id();
    auto l = SessionLock::try_acquire(lock_path(id), id);
    if (!l) {
      if (wanted)
        throw Error("session " + id + " is busy: another agent-vm command holds its lock",
                    "choose another id, or wait for that command to finish");
      continue;
    }
    // A warm-pool VM waiting under this id (root/.pool/<id>) will be its
    // session's: the id is taken.
    // So is one whose host-only folder is a link: a resumed session's VM,
    // started as a pool slot under this id, has its helpers pointed there.
    if (fs::exists(fs::symlink_status(dir(id))) || fs::exists(fs::symlink_status(root_ / ".pool" / id)) ||
        fs::is_symlink(fs::symlink_status(host_dir(id)))) {
      if (wanted && fs::is_symlink(fs::symlink_status(host_dir(id))) && !fs::exists(fs::symlink_status(dir(id)))) {
        std::error_code ec;
        std::string owner = fs::read_symlink(host_dir(id), ec).string();
        throw Error("id " + id + " already exists: session " + owner + " runs on a warm-pool VM started under it",
                    "choose another id, or stop that session first with agent-stop " + owner);
      }
      if (wanted)
        throw Error("session " + id + " already exists",
                    "choose another id, or remove it first with agent-vm rm " + id);
      continue;  // taken: keep its lock file as it was
    }
    // Holding the id's lock, any earlier .creating-<id>-* is a crash leftover.
    for (const auto& e : fs::directory_iterator(root_)) {
      auto lid = leftover_id(e.path().filename().string());
      if (lid && *lid == id) remove_tree(e.path());
    }
    std::string tmpl = (root_ / (std::string(kCreating) + id + "-XXXXXX")).string();
    if (!::mkdtemp(tmpl.data())) throw_errno("cannot create a session folder in " + root_.string());
    fs::path tmp = tmpl;
    NewSession ns(root_, id, tmp, std::move(*l));
    if (::chmod(tmp.c_str(), 0700) != 0) throw_errno("cannot chmod " + tmp.string());
    SessionPaths p = ns.paths();
    make_private_dir(p.opencode());
    make_private_dir(p.ssh());
    make_private_dir(p.run());
    // A host-only folder left by a crashed creation or removal holds nothing
    // that belongs to this new session.
    remove_tree(p.host);
    // Another session's removal may take the (then empty) parent away
    // between its creation and ours: try again once.
    try {
      make_private_dir(p.host);
    } catch (const Error&) {
      make_private_dir(p.host);
    }
    return ns;
  }
  throw Error("could not find a free session id in " + std::to_string(kCreateAttempts) + " tries",
              "check the sessions folder " + root_.string());
}

// ---- NewSession -----------------------------------------------------------

NewSession::NewSession(fs::path root, std::string id, fs::path tmp, SessionLock lock)
    : root_(std::move(root)), id_(std::move(id)), tmp_(std::move(tmp)), lock_(std::move(lock)) {}

NewSession::NewSession(NewSession&& o) noexcept
    : root_(std::move(o.root_)),
      id_(std::move(o.id_)),
      tmp_(std::move(o.tmp_)),
      lock_(std::move(o.lock_)),
      committed_(o.committed_) {
  o.committed_ = true;  // the moved-from one owns nothing
  o.tmp_.clear();
}

NewSession::~NewSession() {
  if (committed_ || tmp_.empty()) return;
  try {
    remove_tree(tmp_);
  } catch (...) {
    // Left as a dot-folder; clean_stale() removes it later.
  }
  try {
    remove_host_dir(root_, id_);
  } catch (...) {
    // Removed by the next create() of this id, or agent-rm.
  }
  if (!fs::exists(fs::symlink_status(root_ / id_))) lock_.unlink_file();
}

void NewSession::save(const Meta& meta) {
  if (committed_) throw Error("internal: session " + id_ + " is already committed");
  if (meta.id != id_) throw Error("internal: meta for " + meta.id + " saved into session " + id_);
  write_file_atomic(paths().meta(), format_meta(meta), 0600);
}

void NewSession::check_meta() const {
  if (committed_) throw Error("internal: session " + id_ + " committed twice");
  Meta m = load_meta(paths().meta());
  if (m.id != id_) throw Error("internal: meta.json of new session " + id_ + " names " + m.id);
}

SessionLock NewSession::place(const fs::path& dir) {
  fs::path final_dir = root_ / id_;
  if (rename_noreplace(dir, final_dir) != 0) {
    if (errno == EEXIST || errno == ENOTEMPTY)
      throw Error("session " + id_ + " appeared while it was being created",
                  "this should not happen; remove the other folder " + final_dir.string());
    throw_errno("cannot move " + dir.string() + " to " + final_dir.string());
  }
  fsync_dir(root_);
  if (dir != tmp_) remove_tree(tmp_);
  committed_ = true;
  tmp_ = final_dir;
  return std::move(lock_);
}

SessionLock NewSession::commit() {
  check_meta();
  return place(tmp_);
}

SessionLock NewSession::commit_into(const fs::path& live) {
  check_meta();
  if (!is_dir_nofollow(live)) throw Error("internal: " + live.string() + " is not a folder");
  hand_over(tmp_, live);
  if (::chmod(live.c_str(), 0700) != 0) throw_errno("cannot chmod " + live.string());
  return place(live);
}

}  // namespace avm::sessions
