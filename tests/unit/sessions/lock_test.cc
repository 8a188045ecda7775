#include "sessions/lock.h"

#include <poll.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "util/error.h"
#include "util/fd.h"
#include "util/file.h"
#include "util/process.h"
#include "util/temp_dir.h"

using namespace avm::sessions;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// Another process holding a session lock until this object lets it go.
// When it lets go, the child first writes `marker` (if any), then unlocks.
class HeldElsewhere {
 public:
  HeldElsewhere(const fs::path& lock, const std::string& id, fs::path marker = {}) {
    int up[2], down[2];
    REQUIRE(::pipe(up) == 0);
    REQUIRE(::pipe(down) == 0);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(up[0]);
      ::close(down[1]);
      int code = 0;
      try {
        auto l = SessionLock::acquire(lock, id, 5s);
        char c = 'L';
        if (::write(up[1], &c, 1) != 1) ::_exit(3);
        while (::read(down[0], &c, 1) > 0) {
        }
        if (!marker.empty()) avm::write_file_atomic(marker, "released");
      } catch (...) {
        code = 2;
      }
      ::_exit(code);
    }
    child_ = avm::Child(pid);
    ::close(up[1]);
    ::close(down[0]);
    up_ = avm::Fd(up[0]);
    down_ = avm::Fd(down[1]);
    pollfd p{up_.get(), POLLIN, 0};
    REQUIRE(::poll(&p, 1, 10000) == 1);
    char c = 0;
    REQUIRE(::read(up_.get(), &c, 1) == 1);
    REQUIRE(c == 'L');
  }
  // Tells the child to let go; returns at once.
  void let_go() { down_.reset(); }
  int wait() {
    let_go();
    return child_.wait();
  }
  pid_t pid() const { return child_.pid(); }

 private:
  avm::Child child_;
  avm::Fd up_, down_;
};

}  // namespace

TEST_CASE("two processes on one session take turns", "[lock]") {
  avm::TempDir dir;
  fs::path lock = dir.path() / "a.lock";
  fs::path marker = dir.path() / "marker";
  HeldElsewhere other(lock, "a", marker);
  CHECK_FALSE(SessionLock::try_acquire(lock, "a").has_value());
  other.let_go();
  // Blocks until the other process is done with the session.
  auto mine = SessionLock::acquire(lock, "a", 10s);
  CHECK(fs::exists(marker));
  CHECK(mine.held());
  CHECK(other.wait() == 0);
}

TEST_CASE("locks of different sessions never contend", "[lock]") {
  avm::TempDir dir;
  HeldElsewhere other(dir.path() / "a.lock", "a");
  auto b = SessionLock::try_acquire(dir.path() / "b.lock", "b");
  CHECK(b.has_value());
  CHECK(other.wait() == 0);
}

TEST_CASE("a waiter that gives up names the holder", "[lock]") {
  avm::TempDir dir;
  fs::path lock = dir.path() / "a.lock";
  HeldElsewhere other(lock, "a");
  auto h = SessionLock::read_holder(lock);
  REQUIRE(h.has_value());
  CHECK(h->pid == other.pid());
  CHECK(h->command.find("unit_sessions") != std::string::npos);
  CHECK(h->since.size() == 20);
  try {
    SessionLock::acquire(lock, "a", 50ms);
    FAIL("acquired a held lock");
  } catch (const avm::Error& e) {
    std::string what = e.what();
    CHECK(what.find("session a is busy") != std::string::npos);
    CHECK(what.find("pid " + std::to_string(other.pid())) != std::string::npos);
    CHECK(std::string(e.hint()).find("kill " + std::to_string(other.pid())) != std::string::npos);
  }
  CHECK(other.wait() == 0);
  // Released: no stale holder is reported.
  CHECK_FALSE(SessionLock::read_holder(lock).has_value());
}

TEST_CASE("a lock file removed by its holder is not the lock any more", "[lock]") {
  avm::TempDir dir;
  fs::path lock = dir.path() / "a.lock";
  auto first = SessionLock::try_acquire(lock, "a");
  REQUIRE(first.has_value());
  first->unlink_file();
  CHECK_FALSE(fs::exists(lock));
  // A newcomer locks the file that is there now, even while the old one is held.
  auto second = SessionLock::try_acquire(lock, "a");
  CHECK(second.has_value());
}

TEST_CASE("a moved lock stays held once", "[lock]") {
  avm::TempDir dir;
  fs::path lock = dir.path() / "a.lock";
  auto a = SessionLock::try_acquire(lock, "a");
  REQUIRE(a.has_value());
  SessionLock b = std::move(*a);
  CHECK_FALSE(a->held());
  CHECK(b.held());
  CHECK_FALSE(SessionLock::try_acquire(lock, "a").has_value());
  b.release();
  CHECK(SessionLock::try_acquire(lock, "a").has_value());
}
