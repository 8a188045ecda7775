// util/platform.h, on this host's implementation: each call against the
// process itself, a child it starts, a folder and a socket of its own.
#include "util/platform.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>

#include "util/file.h"
#include "util/process.h"
#include "util/temp_dir.h"

using namespace std::chrono_literals;
namespace platform = avm::platform;

namespace {

bool readable_within(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, ms) == 1;
}

}  // namespace

TEST_CASE("the process table knows this process", "[platform]") {
  pid_t me = ::getpid();
  CHECK(platform::process_state(me) == avm::ProcState::Running);
  CHECK(platform::process_start_time(me).has_value());
  auto argv = platform::process_argv(me);
  REQUIRE_FALSE(argv.empty());
  CHECK(argv[0].find("unit_util") != std::string::npos);
  auto pids = platform::process_ids();
  CHECK(std::find(pids.begin(), pids.end(), me) != pids.end());
  CHECK(platform::self_exe().filename() == "unit_util");
}

TEST_CASE("a binary replaced while it runs names the file now at its path", "[platform]") {
  CHECK(platform::live_exe_path("/usr/bin/agent-vm (deleted)") == "/usr/bin/agent-vm");
  CHECK(platform::live_exe_path("/usr/bin/agent-vm") == "/usr/bin/agent-vm");
  CHECK(platform::live_exe_path("/opt/a (deleted) b") == "/opt/a (deleted) b");
  CHECK(platform::live_exe_path(" (deleted)") == " (deleted)");
}

TEST_CASE("a gone process has no state, start time or argv", "[platform]") {
  avm::Child c = avm::spawn({"true"});
  pid_t pid = c.pid();
  c.wait();
  CHECK(platform::process_state(pid) == avm::ProcState::Gone);
  CHECK_FALSE(platform::process_start_time(pid).has_value());
  CHECK(platform::process_argv(pid).empty());
}

TEST_CASE("an exit watch wakes when the process exits", "[platform]") {
  avm::Child c = avm::spawn({"sleep", "30"});
  avm::Fd w = platform::exit_watch(c.pid());
  REQUIRE(w);
  CHECK_FALSE(readable_within(w.get(), 50));
  c.kill(SIGKILL);
  CHECK(readable_within(w.get(), 5000));
}

TEST_CASE("a folder watch wakes when a file in it is written", "[platform]") {
  avm::TempDir dir("platform-test");
  avm::Fd w = platform::watch_dir(dir.path());
  CHECK_FALSE(readable_within(w.get(), 20));
  avm::write_file_atomic(dir.path() / "console.log", "boot\n");
  REQUIRE(readable_within(w.get(), 5000));
  platform::read_dir_watch(w.get());
  CHECK_FALSE(readable_within(w.get(), 20));
}

TEST_CASE("an exclusive lock excludes a second open file description", "[platform]") {
  avm::TempDir dir("platform-test");
  auto path = dir.path() / "x.lock";
  avm::Fd a(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  avm::Fd b(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  REQUIRE(platform::try_lock_exclusive(a.get(), path));
  CHECK_FALSE(platform::try_lock_exclusive(b.get(), path));
  a.reset();  // the last copy of the description closes: released
  CHECK(platform::try_lock_exclusive(b.get(), path));
}

TEST_CASE("tcp_listener names the process that listens on a port", "[platform]") {
  avm::Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(s);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(s.get(), reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  auto port = ntohs(addr.sin_port);
  CHECK_FALSE(platform::tcp_listener(port).has_value());  // bound, not listening
  REQUIRE(::listen(s.get(), 1) == 0);
  auto who = platform::tcp_listener(port);
  REQUIRE(who.has_value());
  CHECK(*who == "pid " + std::to_string(::getpid()) + ", unit_util");
}

TEST_CASE("host facts", "[platform]") {
  CHECK(platform::boot_id().size() == 36);  // a UUID
  CHECK(platform::boot_id() == platform::boot_id());
  CHECK(platform::qemu_sandbox_possible());
}

TEST_CASE("a child can give up new privileges and mark fds close-on-exec", "[platform]") {
  // In a child, as process.cc uses them between fork and exec.
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int fd = ::open("/dev/null", O_RDONLY);  // not close-on-exec
    bool ok = platform::forbid_new_privileges() == 0 && platform::cloexec_from(3) == 0 &&
              (::fcntl(fd, F_GETFD) & FD_CLOEXEC);
    ::_exit(ok ? 0 : 1);
  }
  avm::Child c(pid);
  CHECK(c.wait() == 0);
}
