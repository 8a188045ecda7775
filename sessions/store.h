// The session store: one folder per session under a root (docs/design.md,
// "Session directory"). Folders appear whole (built aside, renamed into
// place), are read without locks, and are changed only under the session's
// lock. One broken session never breaks the others.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sessions/lock.h"
#include "sessions/meta.h"

namespace avm::sessions {

// Where things live for one session: its folder (the guest's 9p share: the
// guest, even as root, reads and writes everything in it) and its host-only
// folder root/.host/<id>/ beside it, which the guest never sees (the real API
// key, the gateway's configuration, usage and logs).
struct SessionPaths {
  // The host-only folder is derived from the folder's parent and name.
  explicit SessionPaths(std::filesystem::path dir)
      : dir(std::move(dir)), host(this->dir.parent_path() / ".host" / this->dir.filename()) {}
  SessionPaths(std::filesystem::path dir, std::filesystem::path host) : dir(std::move(dir)), host(std::move(host)) {}
  std::filesystem::path dir;
  std::filesystem::path host;
  std::filesystem::path meta() const { return dir / "meta.json"; }
  std::filesystem::path prompt() const { return dir / "prompt.txt"; }
  std::filesystem::path env() const { return dir / "env"; }
  std::filesystem::path repo() const { return dir / "repo"; }
  std::filesystem::path opencode() const { return dir / "opencode"; }
  std::filesystem::path ssh() const { return dir / "ssh"; }
  std::filesystem::path run() const { return dir / "run"; }
  std::filesystem::path qmp_socket() const { return run() / "qmp.sock"; }
  std::filesystem::path qga_socket() const { return run() / "qga.sock"; }
  std::filesystem::path qemu_pid() const { return run() / "qemu.pid"; }
  std::filesystem::path console_log() const { return run() / "console.log"; }
  // The previous boot's console, kept readable across one start.
  std::filesystem::path previous_console_log() const { return run() / "console.log.1"; }
  std::filesystem::path qemu_log() const { return run() / "qemu.log"; }  // QEMU's own stderr
  // The next instruction for a resumed agent (agent-resume --prompt).
  std::filesystem::path followup() const { return dir / "followup.txt"; }
  // Host-only (mode 0700 folder): never in the share.
  std::filesystem::path api_key() const { return host / "api-key"; }
  std::filesystem::path gateway_config() const { return host / "gateway.json"; }
  std::filesystem::path usage() const { return host / "usage.json"; }
  std::filesystem::path gateway_log() const { return host / "gateway.log"; }
  std::filesystem::path egress_log() const { return host / "egress.log"; }
};

// One entry of SessionStore::list().
struct SessionInfo {
  enum class State {
    Ok,             // meta.json read fine
    Corrupt,        // meta.json missing, unreadable, not JSON, bad fields
    UnknownSchema,  // meta.json from another agent-vm version
  };
  std::string id;
  std::filesystem::path dir;
  State state = State::Ok;
  std::optional<Meta> meta;  // when Ok
  std::string problem;       // the reason, when not Ok
};

class NewSession;

class SessionStore {
 public:
  // `root` need not exist yet; nothing is created until create().
  explicit SessionStore(std::filesystem::path root);
  // The store at util/paths.h sessions_dir() ($AGENT_VM_SESSIONS).
  static SessionStore open_default();

  const std::filesystem::path& root() const noexcept { return root_; }
  // root/<id>, after check_id(id).
  std::filesystem::path dir(std::string_view id) const;
  SessionPaths paths(std::string_view id) const { return SessionPaths(dir(id)); }
  // The lock file of a session: root/.locks/<id>.lock (outside the folder,
  // so it exists before the folder does and outlives its removal).
  std::filesystem::path lock_path(std::string_view id) const;

  // Every session, sorted by id. Never throws for one bad session; throws
  // only when the root itself cannot be read. No lock is taken.
  std::vector<SessionInfo> list() const;

  // The id a user typed, or a unique prefix of one. An exact match wins over
  // longer ids it prefixes. Errors: invalid characters, path separators or
  // '..' (checked before any filesystem access), unknown (suggests
  // agent-list), ambiguous (lists the matches).
  std::string resolve(std::string_view prefix) const;

  bool exists(std::string_view id) const;

  // meta.json of a session; MetaCorrupt / MetaUnknownSchema as parse_meta.
  Meta load(std::string_view id) const;

  // Waits up to `timeout` for the session's lock. Throws if the session does
  // not exist (any more) once the lock is held.
  SessionLock lock(std::string_view id, std::chrono::milliseconds timeout = kLockTimeout) const;

  // Replaces meta.json atomically. `held` must be this session's lock.
  void save(const SessionLock& held, const Meta& meta) const;

  // root/.host/<id>: the session's host-only folder.
  std::filesystem::path host_dir(std::string_view id) const;
  // A VM started under another id (a warm-pool VM a resume took) has its
  // helpers pointed at root/.host/<vm_id>: made a link to <id>, the
  // session's host-only folder is theirs. unlink_host_dir removes that link
  // when it names `id`; host_links lists the links naming `id`. While such
  // a link exists, create() does not hand out <vm_id>.
  void link_host_dir(std::string_view id, std::string_view vm_id) const;
  void unlink_host_dir(std::string_view id, std::string_view vm_id) const;
  std::vector<std::string> host_links(std::string_view id) const;

  // Makes a live VM's share (a warm-pool VM's folder) this session's folder:
  // its entries move in (sessions/handover.h: all but run/), the old folder,
  // left with its run/, goes, and `live` is renamed into place as root/<id>.
  // `held` must be its lock. A failed rename throws with what moved still in
  // `live` (hand_back() returns it).
  void move_into(const SessionLock& held, const std::filesystem::path& live) const;

  // Removes the session folder and its host-only folder and everything in
  // them (rm -rf, never following symlinks out of them), then its lock file. `held` must be its lock; it is
  // released.
  void remove(SessionLock& held) const;

  // Starts a new session folder under `id` (or a fresh generated id), built
  // aside in root/.creating-<id>-XXXXXX with opencode/, ssh/ and run/ made
  // (0700), and its host-only folder root/.host/<id>/ (0700). The session's lock is held from here on. Throws if `id` is taken
  // or busy. Leftovers of crashed creations and removals are cleaned first.
  NewSession create(std::optional<std::string> id = std::nullopt) const;

  // Removes dot-folders left by creations or removals that crashed (their
  // session's lock is free). create() calls it; safe to call any time.
  void clean_stale() const;

 private:
  std::filesystem::path root_;
};

// A session folder under construction. Not committed when it goes: the
// folder is removed, so a failed spawn leaves nothing behind.
class NewSession {
 public:
  NewSession(NewSession&&) noexcept;
  NewSession& operator=(NewSession&&) = delete;
  ~NewSession();

  const std::string& id() const noexcept { return id_; }
  // The folder being built; its path changes at commit().
  const std::filesystem::path& dir() const noexcept { return tmp_; }
  SessionPaths paths() const { return SessionPaths(tmp_, root_ / ".host" / id_); }
  const SessionLock& lock() const noexcept { return lock_; }

  // Writes meta.json into the folder being built (meta.id must be id()).
  void save(const Meta& meta);

  // The folder being built and the host-only folder are removed when not
  // committed.
  // Renames the folder into place as root/<id>. Requires a readable
  // meta.json with the right id. Returns the session's lock, still held.
  SessionLock commit();
  // The same onto a folder that already exists (a warm-pool VM's share,
  // live): every entry built here replaces its namesake there, except run/
  // (the live VM's sockets and console stay), then `live` is renamed into
  // place as root/<id>. Returns the session's lock, still held.
  SessionLock commit_into(const std::filesystem::path& live);

 private:
  // commit()'s and commit_into()'s two ends: meta.json names this session;
  // `dir` becomes root/<id> (never over another folder).
  void check_meta() const;
  SessionLock place(const std::filesystem::path& dir);
  friend class SessionStore;
  NewSession(std::filesystem::path root, std::string id, std::filesystem::path tmp,
             SessionLock lock);
  std::filesystem::path root_;
  std::string id_;
  std::filesystem::path tmp_;
  SessionLock lock_;
  bool committed_ = false;
};

}  // namespace avm::sessions
