#include "launcher/share.h"

#include <endian.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>

#include "util/file.h"
#include "util/temp_dir.h"

namespace fs = std::filesystem;
using namespace avm;
using namespace avm::launcher;

namespace {

// The owner QEMU's mapped-xattr model shows the guest, or -1 when unstamped.
long stamped(const fs::path& p, const char* name = "user.virtfs.uid") {
  uint32_t v;
  if (::lgetxattr(p.c_str(), name, &v, sizeof v) != static_cast<ssize_t>(sizeof v)) return -1;
  return le32toh(v);
}

}  // namespace

TEST_CASE("stamping sets the guest owner once, on every entry but symlinks") {
  TempDir t("share-test");
  fs::path repo = t.path() / "repo";
  fs::create_directories(repo / "src" / "deep");
  write_file_atomic(repo / "README", "hi");
  write_file_atomic(repo / "src" / "deep" / "a.c", "int a;");
  fs::create_symlink("README", repo / "link");

  CHECK(stamp_guest_owner(repo, 1000, 1001) == 5);  // repo, src, deep, README, a.c
  CHECK(stamped(repo) == 1000);
  CHECK(stamped(repo / "src" / "deep" / "a.c") == 1000);
  CHECK(stamped(repo / "src" / "deep" / "a.c", "user.virtfs.gid") == 1001);
  CHECK(stamped(repo / "link") == -1);

  // Again: nothing to do. A new file is stamped; the guest's own choice is kept.
  CHECK(stamp_guest_owner(repo, 1000, 1000) == 0);
  write_file_atomic(repo / "new", "x");
  uint32_t guest_chose = htole32(4242);
  REQUIRE(::lsetxattr((repo / "README").c_str(), "user.virtfs.uid", &guest_chose, 4, 0) == 0);
  CHECK(stamp_guest_owner(repo, 1000, 1000) == 1);
  CHECK(stamped(repo / "README") == 4242);
}

TEST_CASE("prepare_share_for_guest stamps repo/ and opencode/ when QEMU runs as root") {
  TempDir t("share-test");
  fs::create_directories(t.path() / "repo");
  fs::create_directories(t.path() / "ssh");
  write_file_atomic(t.path() / "meta.json", "{}");
  prepare_share_for_guest(t.path());
  if (::geteuid() == 0) {
    CHECK(fs::is_directory(t.path() / "opencode"));
    CHECK(stamped(t.path() / "repo") == kGuestAgentUid);
    CHECK(stamped(t.path() / "opencode") == kGuestAgentUid);
    // The guest sees the session folder as root's 0755; the host keeps 0700.
    CHECK(stamped(t.path()) == 0);
    CHECK(stamped(t.path(), "user.virtfs.mode") == (S_IFDIR | 0755));
    // Host-only and key files are left to root.
    CHECK(stamped(t.path() / "meta.json") == -1);
    CHECK(stamped(t.path() / "ssh") == -1);
  } else {
    CHECK(stamped(t.path() / "repo") == -1);
  }
}
