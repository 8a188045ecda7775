#include "util/process.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <sstream>

#include "util/error.h"
#include "util/file.h"
#include "util/temp_dir.h"

using namespace std::chrono_literals;

namespace {

// The pids a script printed, one a line.
std::vector<pid_t> pids_in(const std::string& out) {
  std::vector<pid_t> pids;
  std::istringstream in(out);
  for (long p; in >> p;) pids.push_back(static_cast<pid_t>(p));
  return pids;
}

// Kills the processes a test started outside any owner, however it ends.
struct KillAtEnd {
  std::vector<pid_t> pids;
  ~KillAtEnd() {
    for (pid_t p : pids)
      if (p > 1) ::kill(p, SIGKILL);
  }
};

}  // namespace

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

TEST_CASE("a timed-out run kills the child's whole process group", "[process]") {
  avm::RunOptions o;
  o.timeout = 2s;
  auto r = avm::run({"sh", "-c", "sleep 100 & echo $!; sleep 100 & echo $!; wait"}, o);
  KillAtEnd guard{pids_in(r.out)};
  CHECK(r.exit_code == 128 + SIGKILL);
  REQUIRE(guard.pids.size() == 2);
  // Both held the output pipe: run returned because they are gone.
  for (pid_t p : guard.pids) CHECK(avm::wait_for_exit(p, 5s));
}

TEST_CASE("a process that left the group cannot hold a timed-out run past its grace", "[process]") {
  avm::TempDir d;
  avm::RunOptions o;
  o.timeout = 2s;
  o.grace = 100ms;
  // The escapee reports its pid through a fifo once it has its own session;
  // it keeps stdout open for 100 s.
  std::string script =
      "mkfifo \"$1\"; setsid sh -c 'echo $$ > \"$1\"; exec sleep 100' sh \"$1\" & "
      "read p < \"$1\"; echo $p; exec sleep 100";
  auto r = avm::run({"sh", "-c", script, "sh", (d.path() / "fifo").string()}, o);
  KillAtEnd guard{pids_in(r.out)};
  CHECK(r.exit_code == 128 + SIGKILL);
  REQUIRE(guard.pids.size() == 1);
  pid_t escaped = guard.pids[0];
  CHECK(avm::proc_alive(escaped));
  CHECK(::getsid(escaped) == escaped);
  ::kill(escaped, SIGKILL);
  CHECK(avm::wait_for_exit(escaped, 5s));
}

TEST_CASE("a background process that holds the pipes cannot keep run waiting after the child exits",
          "[process]") {
  avm::RunOptions o;
  o.grace = 100ms;
  auto r = avm::run({"sh", "-c", "setsid sleep 100 & echo $!"}, o);
  KillAtEnd guard{pids_in(r.out)};
  CHECK(r.exit_code == 0);
  REQUIRE(guard.pids.size() == 1);
  ::kill(guard.pids[0], SIGKILL);
  CHECK(avm::wait_for_exit(guard.pids[0], 5s));
}

TEST_CASE("a spawned child leads its own process group, which goes with its owner", "[process]") {
  int p[2];
  REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
  avm::Fd r(p[0]), w(p[1]);
  pid_t background;
  {
    avm::Child c = avm::spawn({"sh", "-c", "sleep 100 & echo $!; wait"}, {.stdout_fd = w.get()});
    w.reset();
    CHECK(::getpgid(c.pid()) == c.pid());
    CHECK(::getpgid(c.pid()) != ::getpgid(0));
    std::string line;
    char ch;
    while (::read(r.get(), &ch, 1) == 1 && ch != '\n') line += ch;
    background = static_cast<pid_t>(std::stol(line));
    CHECK(::getpgid(background) == c.pid());
  }
  KillAtEnd guard{{background}};
  CHECK(avm::wait_for_exit(background, 5s));
}

TEST_CASE("a child asked to stay in our process group does", "[process]") {
  avm::SpawnOptions so;
  so.own_group = false;
  avm::Child c = avm::spawn({"sleep", "100"}, so);
  CHECK(::getpgid(c.pid()) == ::getpgid(0));
}

TEST_CASE("spawn passes only the listed fds and exactly the environment asked for", "[process]") {
  avm::TempDir d;
  avm::Fd log(::open((d.path() / "log").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  avm::Fd leaked(::open("/dev/null", O_RDONLY));  // not CLOEXEC: only spawn can keep it out
  avm::Fd kept(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  REQUIRE((log && leaked && kept));
  std::string script = "for f in \"$@\"; do [ -e /proc/$$/fd/$f ] && echo open $f; done; env";
  avm::SpawnOptions so;
  so.env = {"PATH=/usr/bin:/bin", "ONLY=this"};
  so.exact_env = true;
  so.stdout_fd = log.get();
  so.keep_fds = {kept.get()};
  avm::Child c = avm::spawn({"/bin/sh", "-c", script, "sh", std::to_string(kept.get()),
                             std::to_string(leaked.get())},
                            so);
  CHECK(c.wait() == 0);
  std::string out = avm::read_file(d.path() / "log");
  CHECK(out.find("open " + std::to_string(kept.get()) + "\n") != std::string::npos);
  CHECK(out.find("open " + std::to_string(leaked.get()) + "\n") == std::string::npos);
  CHECK(out.find("ONLY=this\n") != std::string::npos);
  CHECK(out.find("HOME=") == std::string::npos);
}

TEST_CASE("a program that cannot be executed is reported with exec's error", "[process]") {
  CHECK_THROWS_WITH(avm::spawn({"/nonexistent/program"}),
                    Catch::Contains("/nonexistent/program") && Catch::Contains(std::strerror(ENOENT)));
  CHECK_THROWS_WITH(avm::spawn_detached({"/nonexistent/program"}, {}),
                    Catch::Contains(std::strerror(ENOENT)));
  CHECK_THROWS_AS(avm::spawn({"true"}, {.detach = true}), avm::Error);
}
