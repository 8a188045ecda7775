// What makes the agent's work risky to handle on the host, decided without
// I/O: a reader of git's config format that follows no include, the rule for
// config keys that name a program (or move git's work elsewhere), and the
// classifier that turns changed paths, config entries and hooks into
// warnings. sessions/workback.h feeds it what it read from a session.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace avm::sessions {

// One `key = value` of a git config file, read as data.
struct ConfigEntry {
  std::string key;    // "section.name" or "section.subsection.name"; section and name lowercased
  std::string value;  // unquoted; a key without '=' has the value "true"
  // The lines it spans in the file (0-based, end exclusive), for removal.
  std::size_t first_line = 0, end_line = 0;
  // Where the key starts on its first line: 0, or past a "[section]" header
  // that shares the line.
  std::size_t key_column = 0;
};

// Parses git config text. Never follows include.path (it is returned as an
// entry like any other) and never throws: a line it cannot read becomes an
// entry with key "?" so that it is reported and removed rather than
// trusted.
std::vector<ConfigEntry> parse_git_config(std::string_view text);

// Why a config entry is dangerous on the host, or "" when it is not: it
// names a program git runs (core.fsmonitor, filter.*.clean, alias.x = !cmd,
// ...), loads more config (include.path), or points git at other folders
// (core.worktree, core.hooksPath).
std::string risky_config_key(const ConfigEntry& e);

// `text` without the lines of `remove` (entries parsed from `text`).
std::string strip_config_entries(std::string_view text, const std::vector<ConfigEntry>& remove);

// A path the agent's work changed.
struct ChangedPath {
  std::string path;
  std::string old_path;          // for renames
  std::string status;            // added, modified, deleted, renamed, type-changed
  std::uint32_t old_mode = 0;    // git modes: 0100644, 0100755, 0120000, 0160000; 0 when absent
  std::uint32_t new_mode = 0;
  std::string gitattributes_text;  // the new content, when the path is a .gitattributes
};

struct Warning {
  std::string kind;    // ci, automation, git-attributes, git-modules, envrc, editor-tasks,
                       // devcontainer, executable, git-config, git-hook, git-link
  std::string path;    // the file, config key or hook it is about
  std::string detail;  // one line saying what could run, and when

  bool operator==(const Warning&) const = default;
};

// The warnings for a set of changes plus the session repo's .git/config
// entries and hooks (file names in .git/hooks). Sorted by kind, then path.
std::vector<Warning> classify(const std::vector<ChangedPath>& changes, const std::vector<ConfigEntry>& config,
                              const std::vector<std::string>& hooks);

// Whether a file name in .git/hooks is a hook git would run (anything but
// the *.sample files git itself writes).
bool is_live_hook(std::string_view name);

}  // namespace avm::sessions
