// The session folder as the guest sees it over 9p (docs/design.md, guest contract:
// files the guest writes are owned by the host user).
//
// QEMU as an ordinary user shares with security_model=none: the guest sees
// the host's owners and modes, and its `agent` user takes the uid:gid that
// owns /session/repo, so one owner holds on both sides. QEMU as root shares
// with security_model=mapped-xattr: the guest's owners live in user.virtfs.*
// xattrs, so the host stamps uid:gid 1000:1000 (the guest's agent) on repo/
// and opencode/ before boot; files the guest writes are then owned by root
// (QEMU's user) on the host.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <cstddef>
#include <filesystem>
#include <string>

namespace avm::launcher {

// Called by the launcher before every boot. As root, stamps the guest agent's
// owner on every entry of repo/ and opencode/ that has none yet (creating
// opencode/ if missing), and shows the guest the session folder itself as
// root's with mode 0755 (it stays 0700 on the host) so the agent can reach
// repo/; as an ordinary user, does nothing (the guest's agent is the owner). Cheap when run
// again: entries already stamped cost one getxattr each.
void prepare_share_for_guest(const std::filesystem::path& session_dir);

// The stamping itself, for any tree: sets user.virtfs.uid/gid (QEMU's
// mapped-xattr format, little-endian 32-bit) on every entry under `root`
// (itself included; symlinks skipped) that has no user.virtfs.uid. Returns
// how many entries it stamped.
std::size_t stamp_guest_owner(const std::filesystem::path& root, uid_t uid, gid_t gid);

// The guest agent's uid:gid under mapped-xattr.
inline constexpr uid_t kGuestAgentUid = 1000;
inline constexpr gid_t kGuestAgentGid = 1000;

}  // namespace avm::launcher
