#include "launcher/share.h"

#include "launcher/vm_spec.h"

#include <endian.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include <cerrno>
#include <cstdint>

#include "util/error.h"

namespace avm::launcher {

namespace fs = std::filesystem;

namespace {

constexpr const char* kUid = "user.virtfs.uid";
constexpr const char* kGid = "user.virtfs.gid";
constexpr const char* kMode = "user.virtfs.mode";

// nftw passes no user data: the walk's state, one walk at a time per thread.
thread_local struct {
  uint32_t uid_le, gid_le;
  std::size_t stamped;
  int error;
  std::string error_path;
} walk;

int visit(const char* path, const struct stat* st, int type, struct FTW*) {
  if (type == FTW_SL || type == FTW_SLN || S_ISLNK(st->st_mode)) return 0;
  if (type == FTW_NS || type == FTW_DNR) return 0;  // unreadable: QEMU cannot show it either
  uint32_t have;
  if (::lgetxattr(path, kUid, &have, sizeof have) == static_cast<ssize_t>(sizeof have)) return 0;
  if (::lsetxattr(path, kUid, &walk.uid_le, sizeof walk.uid_le, 0) != 0 ||
      ::lsetxattr(path, kGid, &walk.gid_le, sizeof walk.gid_le, 0) != 0) {
    walk.error = errno;
    walk.error_path = path;
    return 1;
  }
  ++walk.stamped;
  return 0;
}

}  // namespace

std::size_t stamp_guest_owner(const fs::path& root, uid_t uid, gid_t gid) {
  walk.uid_le = htole32(static_cast<uint32_t>(uid));
  walk.gid_le = htole32(static_cast<uint32_t>(gid));
  walk.stamped = 0;
  walk.error = 0;
  walk.error_path.clear();
  if (::nftw(root.c_str(), visit, 64, FTW_PHYS | FTW_MOUNT) != 0) {
    if (walk.error == ENOTSUP || walk.error == EOPNOTSUPP)
      throw Error("cannot share " + root.string() + " with the guest: its filesystem has no "
                  "user xattrs (needed when QEMU runs as root)",
                  "keep the sessions folder on ext4, xfs or btrfs (AGENT_VM_SESSIONS), or run "
                  "agent-vm as an ordinary user");
    throw_errno("cannot stamp the guest owner on " +
                    (walk.error_path.empty() ? root.string() : walk.error_path),
                walk.error ? walk.error : errno);
  }
  return walk.stamped;
}

void prepare_share_for_guest(const fs::path& session_dir) {
  if (share_model_for_uid(::geteuid()) != ShareModel::MappedXattr) return;
  // The session folder is 0700 on the host; the guest's agent must still pass
  // through it to repo/ and opencode/: it sees it as root's, mode 0755.
  uint32_t mode_le = htole32(static_cast<uint32_t>(S_IFDIR | 0755));
  uint32_t root_le = 0;
  if (::lsetxattr(session_dir.c_str(), kMode, &mode_le, sizeof mode_le, 0) != 0 ||
      ::lsetxattr(session_dir.c_str(), kUid, &root_le, sizeof root_le, 0) != 0 ||
      ::lsetxattr(session_dir.c_str(), kGid, &root_le, sizeof root_le, 0) != 0)
    throw_errno("cannot set the guest's view of " + session_dir.string() +
                " (user xattrs; QEMU runs as root)");
  fs::path opencode = session_dir / "opencode";
  std::error_code ec;
  if (!fs::exists(opencode, ec)) {
    fs::create_directories(opencode, ec);
    if (ec) throw Error("cannot create " + opencode.string() + ": " + ec.message());
  }
  for (const char* sub : {"repo", "opencode"}) {
    fs::path p = session_dir / sub;
    if (fs::exists(p, ec)) stamp_guest_owner(p, kGuestAgentUid, kGuestAgentGid);
  }
}

}  // namespace avm::launcher
