#include "sessions/pause.h"

#include <catch2/catch.hpp>

using namespace avm::sessions;
using K = PauseDecision::Kind;

namespace {

SessionStatus in(SessionState state, std::string status = "", std::string detail = "") {
  SessionStatus s;
  s.id = "k3f9ab";
  s.state = state;
  s.status = status.empty() ? std::string(to_string(state)) : status;
  s.detail = std::move(detail);
  return s;
}

}  // namespace

TEST_CASE("pause acts on a running session, unpause on a paused one", "[pause]") {
  CHECK(decide_pause(PauseWant::Pause, in(SessionState::Running)).kind == K::Act);
  CHECK(decide_pause(PauseWant::Unpause, in(SessionState::Paused)).kind == K::Act);
}

TEST_CASE("asking for the state a session is in does nothing and says so", "[pause]") {
  auto d = decide_pause(PauseWant::Pause, in(SessionState::Paused));
  CHECK(d.kind == K::AlreadyThere);
  CHECK(d.message == "k3f9ab is already paused; nothing to do");
  d = decide_pause(PauseWant::Unpause, in(SessionState::Running));
  CHECK(d.kind == K::AlreadyThere);
  CHECK(d.message == "k3f9ab is running, not paused; nothing to do");
}

TEST_CASE("a session without a live answering QEMU is refused with the fix", "[pause]") {
  for (auto want : {PauseWant::Pause, PauseWant::Unpause}) {
    for (auto st : {SessionState::Stopped, SessionState::Crashed, SessionState::Failed}) {
      auto d = decide_pause(want, in(st));
      CHECK(d.kind == K::Refuse);
      CHECK(d.message == "session k3f9ab is not running (" + std::string(to_string(st)) + ")");
      CHECK(d.hint == "start it with 'agent-resume k3f9ab'");
    }
    auto d = decide_pause(want, in(SessionState::Unresponsive, "", "the monitor does not answer: timed out"));
    CHECK(d.kind == K::Refuse);
    CHECK(d.message == "session k3f9ab is unresponsive: the monitor does not answer: timed out");
    CHECK(d.hint == "stop it with 'agent-stop --force k3f9ab'");
    d = decide_pause(want, in(SessionState::Corrupt, "", "meta.json: bad"));
    CHECK(d.kind == K::Refuse);
    CHECK(d.hint == "remove it with 'agent-rm k3f9ab'");
    d = decide_pause(want, in(SessionState::Other, "guest-panicked"));
    CHECK(d.kind == K::Refuse);
    CHECK(d.message == "session k3f9ab's QEMU reports 'guest-panicked', so it can be neither paused nor unpaused");
    CHECK(d.hint == "see 'agent-logs k3f9ab', then 'agent-stop k3f9ab'");
  }
}
