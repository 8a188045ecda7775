// Handing a session's files over to a live VM's share, and back.
//
// A warm-pool VM's 9p export is its slot folder's inode, which QEMU keeps
// open: a session can only move into it, entry by entry (rename(2), atomic
// each), before the folder is renamed into place as the session's. Which
// entries move, and how an interrupted move is undone, is decided here from
// names alone; the renames are done by hand_over() and hand_back().
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace avm::sessions {

// The marker of a warm-pool VM's share: while it is there the guest starts
// no session (no setup, sshd or agent).
inline constexpr std::string_view kPoolSlotMarker = "pool-slot";

// Whether an entry at the top of a share belongs to the VM running on it,
// not to the session: run/ (QEMU's sockets, pid file, console and logs) and
// the pool-slot marker. Everything else (meta.json, repo/, ssh/, env,
// prompt.txt, followup.txt, agent-cmd, opencode/, whatever the agent left)
// is the session's.
bool belongs_to_vm(std::string_view entry);

// One rename, its two ends relative to the folder moved from and to.
struct EntryMove {
  std::string from, to;
  bool operator==(const EntryMove&) const = default;
};

// What moves from a session folder holding `session_entries` into a VM's
// share: every entry that is not the VM's, meta.json last (a folder with it
// is a session), then, when `has_console`, the previous boot's console
// beside the new one (run/console.log to run/console.log.1).
std::vector<EntryMove> plan_hand_over(const std::vector<std::string>& session_entries, bool has_console);

// What goes back when a hand-over was cut short (the resume died, or a
// rename failed): of the share's entries (`share_entries`), each that is
// not the VM's and has no namesake left in the session folder
// (`session_entries`); a namesake there means that entry never moved and
// the share's is the slot's own (its empty ssh/). meta.json last. And the
// previous console, when it moved and the session has none.
std::vector<EntryMove> plan_hand_back(const std::vector<std::string>& share_entries,
                                      const std::vector<std::string>& session_entries, bool share_has_previous_console,
                                      bool session_has_console);

// The entries of a folder, by name.
std::vector<std::string> folder_entries(const std::filesystem::path& dir);

// Performs plan_hand_over from `session_dir` into `share`. A namesake in the
// share (the slot's own ssh/) is replaced. Throws on the first rename that
// fails, leaving what moved where it is (hand_back() puts it back).
void hand_over(const std::filesystem::path& session_dir, const std::filesystem::path& share);

// Performs plan_hand_back from `share` into `session_dir` (made, 0700, when
// it is gone). Safe to repeat.
void hand_back(const std::filesystem::path& share, const std::filesystem::path& session_dir);

}  // namespace avm::sessions
