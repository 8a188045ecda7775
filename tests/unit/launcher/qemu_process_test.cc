#include "launcher/qemu_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstring>

#include "util/error.h"
#include "util/fd.h"
#include "util/file.h"
#include "util/process.h"
#include "util/flock.h"
#include "util/temp_dir.h"

using namespace avm::launcher;
using namespace std::chrono_literals;

namespace {
// Kills a detached process, and anything it started (its process group),
// when the test ends, however it ends.
struct Reap {
  pid_t pid;
  ~Reap() {
    if (pid <= 0) return;
    pid_t pg = ::getpgid(pid);
    if (pg > 1 && pg != ::getpgid(0)) ::kill(-pg, SIGKILL);
    ::kill(pid, SIGKILL);
  }
};
}  // namespace

TEST_CASE("a detached process is not our child and has its own session", "[qemu_process]") {
  avm::TempDir d;
  auto p = start_detached({"sleep", "30"}, d.path() / "log");
  Reap r{p.pid};
  REQUIRE(p.pid > 0);
  CHECK(p.start_time != 0);
  CHECK(::getsid(p.pid) != ::getsid(0));
  // Not our child: waitpid cannot see it.
  int st;
  CHECK(::waitpid(p.pid, &st, WNOHANG) == -1);
  CHECK(errno == ECHILD);
  ::kill(p.pid, SIGKILL);
  CHECK(avm::wait_for_exit(p.pid, 5s));
}

TEST_CASE("a detached process writes its output to the log", "[qemu_process]") {
  avm::TempDir d;
  auto p = start_detached({"sh", "-c", "echo out; echo err >&2"}, d.path() / "log");
  Reap r{p.pid};
  REQUIRE(avm::wait_for_exit(p.pid, 5s));
  CHECK(avm::read_file(d.path() / "log") == "out\nerr\n");
}

TEST_CASE("a recorded pid is trusted only if name and start time match", "[qemu_process]") {
  avm::TempDir d;
  // The shell stays (it waits for sleep), so its command line keeps -name.
  auto q = start_detached({"sh", "-c", "sleep 30 & wait", "sh", "-name", "agent-vm-abc"}, d.path() / "log");
  Reap r2{q.pid};
  CHECK(is_vm_process(q.pid, "agent-vm-abc", q.start_time));
  CHECK(is_vm_process(q.pid, "agent-vm-abc"));
  CHECK_FALSE(is_vm_process(q.pid, "agent-vm-abd", q.start_time));
  CHECK_FALSE(is_vm_process(q.pid, "agent-vm-ab", q.start_time));
  CHECK_FALSE(is_vm_process(q.pid, "agent-vm-abc", q.start_time + 1));
  CHECK_FALSE(is_vm_process(::getpid(), "agent-vm-abc"));
  auto found = find_vm_processes("agent-vm-abc");
  CHECK(std::find(found.begin(), found.end(), q.pid) != found.end());
  ::kill(-::getpgid(q.pid), SIGKILL);
  REQUIRE(avm::wait_for_exit(q.pid, 5s));
  CHECK_FALSE(is_vm_process(q.pid, "agent-vm-abc", q.start_time));
}

TEST_CASE("a program that cannot be run is an error, not a detached nothing", "[qemu_process]") {
  avm::TempDir d;
  CHECK_THROWS_WITH(start_detached({"/nonexistent/qemu"}, d.path() / "log"),
                    Catch::Contains("/nonexistent/qemu") && Catch::Contains(std::strerror(ENOENT)));
  avm::write_file_atomic(d.path() / "notexec", "x", 0644);
  CHECK_THROWS_WITH(start_detached({(d.path() / "notexec").string()}, d.path() / "log"),
                    Catch::Contains(std::strerror(EACCES)));
  CHECK_THROWS_AS(start_detached({"no-such-qemu-xyz"}, d.path() / "log"), avm::Error);
}

TEST_CASE("inherited fds stay open in the detached process", "[qemu_process]") {
  avm::TempDir d;
  auto lock = avm::FileLock::try_acquire(d.path() / "lock");
  REQUIRE(lock);
  auto p = start_detached({"sleep", "30"}, d.path() / "log", {lock->fd()});
  Reap r{p.pid};
  { auto drop = std::move(*lock); }
  CHECK_FALSE(avm::FileLock::try_acquire(d.path() / "lock").has_value());
  ::kill(p.pid, SIGKILL);
  REQUIRE(avm::wait_for_exit(p.pid, 5s));
  // The exit may still be settling for the lock (zombie holds no fds).
  CHECK(avm::FileLock::try_acquire(d.path() / "lock").has_value());
}

TEST_CASE("a detached process gets only the environment it is given", "[qemu_process]") {
  avm::TempDir d;
  ::setenv("AGENT_VM_TEST_SECRET", "sk-should-not-leak", 1);
  auto p = start_detached({"sh", "-c", "env"}, d.path() / "log");
  Reap r{p.pid};
  REQUIRE(avm::wait_for_exit(p.pid, 5s));
  std::string env = avm::read_file(d.path() / "log");
  CHECK(env.find("sk-should-not-leak") == std::string::npos);
  CHECK(env.find("PATH=") != std::string::npos);
  ::unsetenv("AGENT_VM_TEST_SECRET");

  auto q = start_detached({"env"}, d.path() / "env.log", {}, {"A=1", "B=two words"});
  Reap r2{q.pid};
  REQUIRE(avm::wait_for_exit(q.pid, 5s));
  CHECK(avm::read_file(d.path() / "env.log") == "A=1\nB=two words\n");
}

TEST_CASE("a detached process inherits no fd but those listed", "[qemu_process]") {
  avm::TempDir d;
  avm::Fd leaked(::open("/dev/null", O_RDONLY));  // not CLOEXEC
  avm::Fd kept(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  REQUIRE((leaked && kept));
  std::string script = "for f in \"$@\"; do [ -e /proc/$$/fd/$f ] && echo open $f; done; true";
  auto p = start_detached({"sh", "-c", script, "sh", std::to_string(kept.get()), std::to_string(leaked.get())},
                          d.path() / "log", {kept.get()});
  Reap r{p.pid};
  REQUIRE(avm::wait_for_exit(p.pid, 5s));
  CHECK(avm::read_file(d.path() / "log") == "open " + std::to_string(kept.get()) + "\n");
}

TEST_CASE("nothing a detached process runs can gain privileges through exec", "[qemu_process]") {
  // QEMU under restricted networking may spawn (the egress helper), so its
  // seccomp filter allows privilege changes; no_new_privs keeps setuid
  // programs from raising them, in QEMU and in everything it starts.
  avm::TempDir d;
  auto p = start_detached({"sh", "-c", "grep NoNewPrivs /proc/self/status"}, d.path() / "log");
  Reap r{p.pid};
  REQUIRE(avm::wait_for_exit(p.pid, 5s));
  CHECK(avm::read_file(d.path() / "log") == "NoNewPrivs:\t1\n");
}
