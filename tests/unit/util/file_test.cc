#include "util/file.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "util/error.h"
#include "util/temp_dir.h"

namespace fs = std::filesystem;

TEST_CASE("write_file_atomic replaces the file whole, with the mode asked", "[file]") {
  avm::TempDir dir;
  fs::path p = dir.path() / "meta.json";
  avm::write_file_atomic(p, "one", 0600);
  CHECK(avm::read_file(p) == "one");
  avm::write_file_atomic(p, "two", 0600);
  CHECK(avm::read_file(p) == "two");
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  // No temporary files left behind.
  int n = 0;
  for (auto& e : fs::directory_iterator(dir.path())) (void)e, ++n;
  CHECK(n == 1);
}

TEST_CASE("write_file_atomic leaves the old file when the write fails", "[file]") {
  avm::TempDir dir;
  fs::path p = dir.path() / "meta.json";
  avm::write_file_atomic(p, "old");
  // A read-only directory makes the temporary file impossible (unless root;
  // then a path under a regular file fails the same way for everyone).
  fs::path bad = dir.path() / "meta.json" / "x";
  CHECK_THROWS_AS(avm::write_file_atomic(bad, "new"), avm::Error);
  CHECK(avm::read_file(p) == "old");
}

TEST_CASE("read_file_if_exists tells absence from content", "[file]") {
  avm::TempDir dir;
  CHECK_FALSE(avm::read_file_if_exists(dir.path() / "nope").has_value());
  avm::write_file_atomic(dir.path() / "empty", "");
  CHECK(avm::read_file_if_exists(dir.path() / "empty") == std::string());
  CHECK_THROWS_AS(avm::read_file(dir.path() / "nope"), avm::Error);
}

TEST_CASE("TempDir removes its tree unless released", "[file]") {
  fs::path kept;
  {
    avm::TempDir t;
    fs::create_directories(t.path() / "a/b");
    avm::write_file_atomic(t.path() / "a/b/c", "x");
    kept = t.path();
    CHECK(fs::exists(kept));
  }
  CHECK_FALSE(fs::exists(kept));
  avm::TempDir t2;
  fs::path p = t2.release();
  CHECK(fs::exists(p));
  fs::remove_all(p);
}
