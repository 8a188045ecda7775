#include "sessions/pause.h"

namespace avm::sessions {

PauseDecision decide_pause(PauseWant want, const SessionStatus& now) {
  using K = PauseDecision::Kind;
  const std::string& id = now.id;
  bool pause = want == PauseWant::Pause;
  switch (now.state) {
    case SessionState::Running:
      if (pause) return {K::Act, "", ""};
      return {K::AlreadyThere, id + " is running, not paused; nothing to do", ""};
    case SessionState::Paused:
      if (!pause) return {K::Act, "", ""};
      return {K::AlreadyThere, id + " is already paused; nothing to do", ""};
    case SessionState::Stopped:
    case SessionState::Crashed:
    case SessionState::Failed:
      return {K::Refuse, "session " + id + " is not running (" + now.status + ")",
              "start it with 'agent-resume " + id + "'"};
    case SessionState::Unresponsive:
      return {K::Refuse, "session " + id + " is unresponsive: " + now.detail,
              "stop it with 'agent-stop --force " + id + "'"};
    case SessionState::Corrupt:
      return {K::Refuse, "session " + id + " has a corrupt meta.json: " + now.detail,
              "remove it with 'agent-rm " + id + "'"};
    case SessionState::Other:
      break;
  }
  // shutdown, guest-panicked, inmigrate, ...: neither running nor paused.
  return {K::Refuse,
          "session " + id + "'s QEMU reports '" + now.status + "', so it can be neither paused nor unpaused",
          "see 'agent-logs " + id + "', then 'agent-stop " + id + "'"};
}

}  // namespace avm::sessions
