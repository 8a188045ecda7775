// Sessions as agent-list sees them: each one's meta.json, its QEMU (alive,
// run state, the guest's ports, or its guest agent) and the gateway's meter,
// observed, never remembered. Kept apart from the lifecycle (clone, keys,
// boot) so that a program that only observes links nothing else.
#pragma once

#include <chrono>
#include <string>

#include "sessions/status.h"
#include "sessions/store.h"
#include "sessions/vm_driver.h"

namespace avm::sessions {

// One session's meta.json, or why it cannot be read (Corrupt).
SessionInfo load_info(const SessionStore& store, const std::string& id);

// One session observed within `timeout`; with `ask_guest` its guest agent is
// asked too (see list in sessions/lifecycle.h).
SessionStatus observe_session(VmDriver& driver, const SessionInfo& info, std::chrono::milliseconds timeout,
                              bool ask_guest = true);

}  // namespace avm::sessions
