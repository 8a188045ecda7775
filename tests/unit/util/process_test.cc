#include "util/process.h"

#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "util/error.h"

using namespace std::chrono_literals;

TEST_CASE("run captures output, exit code and stdin", "[process]") {
  auto r = avm::run({"sh", "-c", "cat; echo err >&2; exit 3"}, {.input = "hello"});
  CHECK(r.exit_code == 3);
  CHECK(r.out == "hello");
  CHECK(r.err == "err\n");
}

TEST_CASE("run reports a signal as 128+N and honours its timeout", "[process]") {
  avm::RunOptions o;
  o.timeout = 200ms;
  auto r = avm::run({"sleep", "30"}, o);
  CHECK(r.exit_code == 128 + SIGKILL);
}

TEST_CASE("run of a missing program throws naming it", "[process]") {
  CHECK_THROWS_WITH(avm::run({"no-such-program-xyz"}), Catch::Contains("no-such-program-xyz"));
}

TEST_CASE("a zombie counts as exited", "[process]") {
  avm::Child c = avm::spawn({"true"});
  pid_t pid = c.pid();
  // Not reaped yet: it becomes a zombie. kill(pid, 0) would still succeed.
  REQUIRE(avm::wait_for_exit(pid, 5s));
  CHECK(::kill(pid, 0) == 0);
  CHECK(avm::proc_state(pid) == avm::ProcState::Zombie);
  CHECK_FALSE(avm::proc_alive(pid));
  CHECK(c.wait() == 0);
  CHECK(avm::proc_state(pid) == avm::ProcState::Gone);
}

TEST_CASE("wait_for_exit times out on a live process and sees a stopped one alive", "[process]") {
  avm::Child c = avm::spawn({"sleep", "30"});
  CHECK_FALSE(avm::wait_for_exit(c.pid(), 50ms));
  c.kill(SIGSTOP);
  // Wait for the stop to show.
  for (int i = 0; i < 100 && avm::proc_state(c.pid()) != avm::ProcState::Stopped; ++i)
    usleep(10000);
  CHECK(avm::proc_state(c.pid()) == avm::ProcState::Stopped);
  CHECK(avm::proc_alive(c.pid()));
  c.kill(SIGKILL);
  CHECK(avm::wait_for_exit(c.pid(), 5s));
  CHECK(c.wait() == 128 + SIGKILL);
}

TEST_CASE("proc_start_time tells processes apart", "[process]") {
  auto self = avm::proc_start_time(::getpid());
  REQUIRE(self.has_value());
  CHECK_FALSE(avm::proc_start_time(0).has_value());
  CHECK(avm::proc_exe_name(::getpid()).find("unit_util") != std::string::npos);
}

TEST_CASE("a Child is killed and reaped when its owner goes", "[process]") {
  pid_t pid;
  {
    avm::Child c = avm::spawn({"sleep", "30"});
    pid = c.pid();
    CHECK(avm::proc_alive(pid));
  }
  CHECK(avm::proc_state(pid) == avm::ProcState::Gone);
}
