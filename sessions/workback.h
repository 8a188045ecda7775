// Getting the agent's work out of a session, safely: diff, export into the
// user's own repository, push to the session's origin, and defusing the
// session repo once no guest can write it.
//
// The session repo is the guest's: its .git/config, hooks, attributes,
// alternates and commondir are all written by the agent. So it is read with
// libgit2 only (which runs no hooks, no fsmonitor and no filter drivers),
// opened without its config (an empty in-memory one instead), with an object
// database of its own objects folder only (its alternates are not followed),
// and its work tree is read byte for byte (no eol, ident or filter
// conversion). Nothing here runs a program.
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "sessions/meta.h"
#include "sessions/store.h"
#include "sessions/workback_rules.h"

namespace avm::sessions {

struct FileChange {
  std::string path;
  std::string old_path;  // renames: where it came from
  std::string status;    // added, modified, deleted, renamed, type-changed
  std::uint32_t old_mode = 0, new_mode = 0;
  bool binary = false;
  std::size_t added = 0, removed = 0;  // lines; 0 for binary files
};

struct AgentCommit {
  std::string sha;
  std::string subject;
};

// What was removed from a session repo by defuse().
struct DefuseReport {
  std::vector<std::string> removed;  // config keys ("core.fsmonitor") and "hooks/NAME", ...
  std::filesystem::path kept;        // where the removed files were copied; empty when nothing was removed
  std::string error;                 // set by defuse_after_stop when defusing failed
};

struct WorkDiff {
  std::string id;
  std::string base;  // the commit the session started from
  std::string head;  // the session repo's HEAD
  std::string head_name;  // its branch, or "" when detached
  std::vector<AgentCommit> commits;  // base..HEAD, oldest first
  bool uncommitted = false;          // the work tree (index, untracked files) differs from HEAD
  std::vector<FileChange> files;     // base -> work tree, renames detected
  std::string patch;                 // `git diff` style text, when asked for
  std::vector<Warning> warnings;
  bool running = false;  // the VM runs: files may change while they are read
  DefuseReport defused;  // what was removed first (only when the VM is stopped)
};

struct DiffOptions {
  bool patch = true;  // fill WorkDiff::patch
};

// base..work tree of a session. Defuses the session repo first when its VM
// is stopped.
WorkDiff diff(const SessionStore& store, const std::string& id_or_prefix, const DiffOptions& opts = {});

struct ExportOptions {
  std::optional<std::filesystem::path> to;  // default: the local repository the session was cloned from
  std::string branch;                       // default: agent/<id>
  bool force = false;                       // replace an existing branch
};

struct ExportResult {
  std::string id;
  std::filesystem::path repo;  // where the branch was written
  std::string branch;          // "agent/<id>"
  std::string base, tip;       // base commit and the branch's new commit
  std::optional<std::string> replaced;  // the branch's old commit, with --force
  std::size_t commits = 0;              // the agent's commits copied
  bool uncommitted_commit = false;      // one more commit holds the uncommitted work
  std::string identity;                 // author and committer of that commit
  std::size_t objects_written = 0;
  std::vector<Warning> warnings;
  bool running = false;
  DefuseReport defused;
};

// Writes the agent's work as a branch of the user's repository: its commits
// (objects copied), plus one commit of the uncommitted work. Only the new
// ref is written: the repository's HEAD, index and work tree are untouched.
ExportResult export_work(const SessionStore& store, const std::string& id_or_prefix, const ExportOptions& opts);

struct PushOptions {
  std::string branch;  // default: agent/<id>
  bool force = false;
};
struct PushResult {
  std::string id;
  std::string url;  // redacted
  std::string branch;
  std::string tip;
  std::vector<Warning> warnings;
  bool running = false;
  DefuseReport defused;
};
// Pushes the same branch export would write to the session's origin (the
// URL in meta.json, never the session repo's remote config), with clone's
// credentials and host key checks.
PushResult push_work(const SessionStore& store, const std::string& id_or_prefix, const PushOptions& opts);

// Removes from the session repo what would make git on the host run a
// program or work elsewhere (risky config keys, hooks, commondir,
// alternates), keeping copies in <sessions root>/.host/<id>/defused/<time>/.
// The caller holds the session's lock; throws if the VM still runs.
DefuseReport defuse(const SessionPaths& paths, const Meta& meta);

// defuse() for agent-stop, once the VM is gone: a failure is reported in
// DefuseReport::error rather than thrown (the stop itself succeeded).
DefuseReport defuse_after_stop(const SessionPaths& paths, const Meta& meta);

// The branch export and push write by default: "agent/<id>".
std::string default_branch(const std::string& id);

}  // namespace avm::sessions
