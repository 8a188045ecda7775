#include "util/flock.h"

#include <signal.h>

#include <catch2/catch.hpp>

#include "util/error.h"
#include "util/process.h"
#include "util/temp_dir.h"

using namespace std::chrono_literals;

TEST_CASE("a held lock excludes others until released", "[flock]") {
  avm::TempDir dir;
  auto p = dir.path() / "lock";
  {
    auto a = avm::FileLock::try_acquire(p);
    REQUIRE(a.has_value());
    CHECK_FALSE(avm::FileLock::try_acquire(p).has_value());
    CHECK_THROWS_AS(avm::FileLock::acquire(p, 50ms), avm::Error);
  }
  CHECK(avm::FileLock::try_acquire(p).has_value());
}

TEST_CASE("an inherited lock is held by the child after the parent lets go", "[flock]") {
  avm::TempDir dir;
  auto p = dir.path() / "lock";
  avm::Child child;
  {
    auto a = avm::FileLock::try_acquire(p);
    REQUIRE(a.has_value());
    a->make_inheritable();
    child = avm::spawn({"sleep", "30"}, {.keep_fds = {a->fd()}});
  }
  CHECK_FALSE(avm::FileLock::try_acquire(p).has_value());
  child.kill(SIGKILL);
  child.wait();
  CHECK(avm::FileLock::try_acquire(p).has_value());
}
