#include "launcher/stop_machine.h"

#include <csignal>
#include <catch2/catch.hpp>

using namespace avm::launcher;
using K = StopAction::Kind;
using namespace std::chrono_literals;

namespace {
StopPolicy policy() {
  StopPolicy p;
  p.timeout = 60s;
  p.repress_after = 15s;
  return p;
}
}  // namespace

TEST_CASE("a guest that powers off ends as guest-poweroff", "[stop]") {
  StopMachine m(policy());
  auto a = m.start();
  CHECK(a.kind == K::PowerButton);
  CHECK(a.wait == 15s);
  a = m.on_shutdown(true, "guest-shutdown");
  CHECK(a.kind == K::Wait);
  a = m.on_exited();
  CHECK(a.kind == K::Done);
  CHECK(a.method == StopMethod::GuestPoweroff);
  CHECK(m.trail() == "power button");
}

TEST_CASE("a booting guest gets one more press", "[stop]") {
  StopMachine m(policy());
  m.start();
  auto a = m.on_wait_expired();
  CHECK(a.kind == K::PowerButton);
  CHECK(a.wait == 45s);  // the rest of the timeout
  m.on_shutdown(true, "guest-shutdown");
  a = m.on_exited();
  CHECK(a.method == StopMethod::GuestPoweroff);
  CHECK(m.trail() == "power button, power button again");
}

TEST_CASE("a guest that ignores the button is escalated to quit, SIGTERM, SIGKILL", "[stop]") {
  StopMachine m(policy());
  m.start();
  m.on_wait_expired();
  auto a = m.on_wait_expired();
  CHECK(a.kind == K::Quit);
  a = m.on_wait_expired();
  CHECK(a.kind == K::Signal);
  CHECK(a.signal == SIGTERM);
  a = m.on_wait_expired();
  CHECK(a.kind == K::Signal);
  CHECK(a.signal == SIGKILL);
  a = m.on_exited();
  CHECK(a.kind == K::Done);
  CHECK(a.method == StopMethod::Sigkill);
  CHECK(m.trail() == "power button, power button again, quit, SIGTERM, SIGKILL");
}

TEST_CASE("quit that works ends as quit, even if SHUTDOWN comes first", "[stop]") {
  StopMachine m(policy());
  m.start();
  m.on_wait_expired();
  m.on_wait_expired();  // quit
  CHECK(m.on_shutdown(false, "host-qmp-quit").kind == K::Continue);
  auto a = m.on_exited();
  CHECK(a.method == StopMethod::Quit);
}

TEST_CASE("force goes straight to quit", "[stop]") {
  auto p = policy();
  p.force = true;
  StopMachine m(p);
  auto a = m.start();
  CHECK(a.kind == K::Quit);
  CHECK(m.on_exited().method == StopMethod::Quit);
  CHECK(m.trail() == "quit");
}

TEST_CASE("without a monitor, signals are all that is left", "[stop]") {
  StopMachine m(policy());
  m.start();
  auto a = m.on_command_failed("QMP does not answer");
  CHECK(a.kind == K::Signal);
  CHECK(a.signal == SIGTERM);
  CHECK(m.on_exited().method == StopMethod::Sigterm);
}

TEST_CASE("SHUTDOWN without an exit falls back to quit", "[stop]") {
  StopMachine m(policy());
  m.start();
  m.on_shutdown(true, "guest-shutdown");
  auto a = m.on_wait_expired();
  CHECK(a.kind == K::Quit);
  CHECK(m.on_exited().method == StopMethod::Quit);
}

TEST_CASE("an exit without a guest SHUTDOWN is not called a clean power-off", "[stop]") {
  StopMachine m(policy());
  m.start();
  auto a = m.on_exited();
  CHECK(a.kind == K::Done);
  CHECK(a.method == StopMethod::Exited);
}

TEST_CASE("a QEMU that survives SIGKILL is a failure naming every step", "[stop]") {
  auto p = policy();
  p.force = true;
  StopMachine m(p);
  m.start();
  m.on_wait_expired();
  m.on_wait_expired();
  auto a = m.on_wait_expired();
  CHECK(a.kind == K::Fail);
  CHECK(a.detail.find("quit, SIGTERM, SIGKILL") != std::string::npos);
}

TEST_CASE("a timeout shorter than the re-press delay skips the second press", "[stop]") {
  auto p = policy();
  p.timeout = 5s;
  StopMachine m(p);
  auto a = m.start();
  CHECK(a.wait == 5s);
  CHECK(m.on_wait_expired().kind == K::Quit);
}

TEST_CASE("a paused guest is continued before the power button, which it could not see paused", "[stop]") {
  StopMachine m(policy());
  auto a = m.start(true);
  CHECK(a.kind == K::Cont);
  a = m.on_continued();
  CHECK(a.kind == K::PowerButton);
  CHECK(a.wait == 15s);
  m.on_shutdown(true, "guest-shutdown");
  a = m.on_exited();
  CHECK(a.method == StopMethod::GuestPoweroff);
  CHECK(m.trail() == "cont, power button");
}

TEST_CASE("a paused guest whose cont fails goes to signals, and --force quits it paused", "[stop]") {
  SECTION("cont not delivered") {
    StopMachine m(policy());
    m.start(true);
    auto a = m.on_command_failed("the monitor does not answer");
    CHECK(a.kind == K::Signal);
    CHECK(a.signal == SIGTERM);
    CHECK(a.detail == "the monitor does not answer");
    CHECK(m.trail() == "cont, SIGTERM");
  }
  SECTION("forced: quit works on a paused VM as it is") {
    StopPolicy p = policy();
    p.force = true;
    StopMachine m(p);
    auto a = m.start(true);
    CHECK(a.kind == K::Quit);
    a = m.on_exited();
    CHECK(a.method == StopMethod::Quit);
    CHECK(m.trail() == "quit");
  }
  SECTION("a running guest is not continued") {
    StopMachine m(policy());
    CHECK(m.start(false).kind == K::PowerButton);
    CHECK(m.on_continued().kind == K::Continue);
  }
}
