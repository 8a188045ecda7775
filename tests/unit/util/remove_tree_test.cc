#include "util/remove_tree.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>

#include "util/error.h"
#include "util/fd.h"
#include "util/file.h"
#include "util/temp_dir.h"

namespace fs = std::filesystem;

namespace {

bool exists_nofollow(const fs::path& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0;
}

}  // namespace

TEST_CASE("remove_tree removes files, folders and a missing path is fine", "[remove_tree]") {
  avm::TempDir d;
  fs::create_directories(d.path() / "t" / "a" / "b");
  avm::write_file_atomic(d.path() / "t" / "a" / "b" / "f", "x");
  avm::write_file_atomic(d.path() / "t" / "g", "y");
  avm::remove_tree(d.path() / "t");
  CHECK_FALSE(exists_nofollow(d.path() / "t"));
  CHECK_NOTHROW(avm::remove_tree(d.path() / "t"));
  CHECK_NOTHROW(avm::remove_tree(d.path() / "no" / "such" / "folder"));
  // A plain file is removed too, and a trailing slash names the folder.
  avm::write_file_atomic(d.path() / "file", "z");
  avm::remove_tree(d.path() / "file");
  CHECK_FALSE(exists_nofollow(d.path() / "file"));
  fs::create_directories(d.path() / "slash" / "x");
  avm::remove_tree((d.path() / "slash").string() + "/");
  CHECK_FALSE(exists_nofollow(d.path() / "slash"));
}

TEST_CASE("remove_tree unlinks symlinks inside the tree and never follows them", "[remove_tree]") {
  avm::TempDir d;
  fs::create_directories(d.path() / "outside" / "sub");
  avm::write_file_atomic(d.path() / "outside" / "keep", "k");
  avm::write_file_atomic(d.path() / "outside" / "sub" / "keep", "k");
  avm::write_file_atomic(d.path() / "outside-file", "k");
  fs::create_directories(d.path() / "t" / "inner");
  fs::create_directory_symlink(d.path() / "outside", d.path() / "t" / "to-dir");
  fs::create_directory_symlink(d.path() / "outside", d.path() / "t" / "inner" / "to-dir");
  fs::create_symlink(d.path() / "outside-file", d.path() / "t" / "to-file");
  fs::create_symlink(d.path() / "nowhere", d.path() / "t" / "dangling");
  avm::remove_tree(d.path() / "t");
  CHECK_FALSE(exists_nofollow(d.path() / "t"));
  CHECK(avm::read_file(d.path() / "outside" / "keep") == "k");
  CHECK(avm::read_file(d.path() / "outside" / "sub" / "keep") == "k");
  CHECK(avm::read_file(d.path() / "outside-file") == "k");
}

TEST_CASE("a root that is itself a symlink is unlinked, not followed", "[remove_tree]") {
  avm::TempDir d;
  fs::create_directories(d.path() / "outside");
  avm::write_file_atomic(d.path() / "outside" / "keep", "k");
  fs::create_directory_symlink(d.path() / "outside", d.path() / "link");
  avm::remove_tree(d.path() / "link");
  CHECK_FALSE(exists_nofollow(d.path() / "link"));
  CHECK(avm::read_file(d.path() / "outside" / "keep") == "k");
}

TEST_CASE("remove_tree empties read-only folders", "[remove_tree]") {
  avm::TempDir d;
  fs::create_directories(d.path() / "t" / "ro" / "deeper");
  avm::write_file_atomic(d.path() / "t" / "ro" / "f", "x", 0444);
  avm::write_file_atomic(d.path() / "t" / "ro" / "deeper" / "g", "x", 0444);
  REQUIRE(::chmod((d.path() / "t" / "ro" / "deeper").c_str(), 0500) == 0);
  REQUIRE(::chmod((d.path() / "t" / "ro").c_str(), 0500) == 0);
  REQUIRE(::chmod((d.path() / "t").c_str(), 0555) == 0);
  avm::remove_tree(d.path() / "t");
  CHECK_FALSE(exists_nofollow(d.path() / "t"));
}

TEST_CASE("remove_tree copes with a tree deeper than PATH_MAX", "[remove_tree]") {
  avm::TempDir d;
  // 300 levels of 40-character names: 12 kB of path, beyond what any
  // path-based call accepts. Built with mkdirat from fds for the same reason.
  const std::string name(40, 'd');
  {
    avm::Fd cur(::open(d.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    REQUIRE(cur);
    for (int i = 0; i < 300; ++i) {
      REQUIRE(::mkdirat(cur.get(), name.c_str(), 0700) == 0);
      cur = avm::Fd(::openat(cur.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      REQUIRE(cur);
    }
    avm::Fd f(::openat(cur.get(), "leaf", O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
    REQUIRE(f);
  }
  avm::remove_tree(d.path() / name);
  CHECK_FALSE(exists_nofollow(d.path() / name));
}
