// rm -rf that cannot be tricked by what it removes: a folder the guest could
// write while it ran may hold symlinks to anywhere, or have names swapped
// under us. Nix's deletePath.
#pragma once

#include <filesystem>

namespace avm {

// Removes `path` and everything below it. It works from directory fds
// (openat with O_NOFOLLOW, fstatat without following, unlinkat), so a
// symlink anywhere in the tree, `path` itself included, is unlinked and
// never followed, and no path is ever resolved through the tree. A
// read-only folder is made writable (fchmod on its fd) before its entries
// go. A missing `path` is fine. Throws avm::Error naming the entry that
// could not be removed. Each level of depth holds one fd while it runs.
void remove_tree(const std::filesystem::path& path);

}  // namespace avm
