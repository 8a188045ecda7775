#include "launcher/readiness.h"

#include <catch2/catch.hpp>

using namespace avm::launcher;
using K = ReadyAction::Kind;
using namespace std::chrono_literals;

TEST_CASE("checks run in order and each must pass", "[readiness]") {
  ReadinessMachine m(60s, 250ms);
  for (ReadyCheck c : {ReadyCheck::Qmp, ReadyCheck::Share, ReadyCheck::GuestAgent, ReadyCheck::Ssh,
                       ReadyCheck::Agent}) {
    auto a = m.next(1s);
    REQUIRE(a.kind == K::Check);
    CHECK(a.check == c);
    m.on_result(c, true, "", 1s);
  }
  CHECK(m.next(1s).kind == K::Ready);
  CHECK(m.passed().size() == 5);
}

TEST_CASE("a failed check is retried after the interval", "[readiness]") {
  ReadinessMachine m(60s, 250ms);
  m.on_result(ReadyCheck::Qmp, false, "connection refused", 100ms);
  auto a = m.next(150ms);
  CHECK(a.kind == K::Wait);
  CHECK(a.wait == 200ms);
  CHECK(m.next(350ms).kind == K::Check);
}

TEST_CASE("the deadline ends the wait naming the step and its last error", "[readiness]") {
  ReadinessMachine m(10s, 1s);
  m.on_result(ReadyCheck::Qmp, true, "", 1s);
  m.on_result(ReadyCheck::Share, true, "", 1s);
  m.on_result(ReadyCheck::GuestAgent, false, "no answer to guest-sync", 9s);
  auto a = m.next(10s);
  CHECK(a.kind == K::Fail);
  CHECK(a.detail.find("guest agent") != std::string::npos);
  CHECK(a.detail.find("no answer to guest-sync") != std::string::npos);
}

TEST_CASE("QEMU's exit ends the wait at once", "[readiness]") {
  ReadinessMachine m(60s, 1s);
  m.on_result(ReadyCheck::Qmp, true, "", 1s);
  m.on_exited("exit status 1", 2s);
  auto a = m.next(2s);
  CHECK(a.kind == K::Fail);
  CHECK(a.detail.find("QEMU exited") != std::string::npos);
  CHECK(a.detail.find("9p share") != std::string::npos);
}

TEST_CASE("a fatal check failure is not retried", "[readiness]") {
  ReadinessMachine m(60s, 1s);
  m.on_result(ReadyCheck::Qmp, true, "", 1s);
  m.on_result(ReadyCheck::Share, false, "mount_tag is 'x', expected 'session'", 1s, true);
  CHECK(m.next(1s).kind == K::Fail);
}

TEST_CASE("no-wait stops after the share is confirmed", "[readiness]") {
  ReadinessMachine m(60s, 1s, ReadyCheck::Share);
  m.on_result(ReadyCheck::Qmp, true, "", 1s);
  m.on_result(ReadyCheck::Share, true, "", 1s);
  CHECK(m.next(1s).kind == K::Ready);
}

TEST_CASE("stale results for another check are ignored", "[readiness]") {
  ReadinessMachine m(60s, 1s);
  m.on_result(ReadyCheck::Ssh, true, "", 1s);
  CHECK(m.current() == ReadyCheck::Qmp);
}
