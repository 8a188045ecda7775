// Whether agent-vm pause or unpause acts on a session, decided from what
// was observed of it: a pure function, so every state is unit-tested
// without a VM. Asking for the state a session is already in is not an
// error: it says so and does nothing (exit 0), as stopping a stopped
// session does. A session with no live, answering QEMU is refused, with
// the fix.
#pragma once

#include <string>

#include "sessions/status.h"

namespace avm::sessions {

enum class PauseWant { Pause, Unpause };

struct PauseDecision {
  enum class Kind {
    Act,           // send QMP stop (pause) or cont (unpause)
    AlreadyThere,  // nothing to do: `message` says why
    Refuse,        // an error: `message` and `hint` (the fix)
  } kind = Kind::Refuse;
  std::string message;
  std::string hint;
};

PauseDecision decide_pause(PauseWant want, const SessionStatus& now);

}  // namespace avm::sessions
