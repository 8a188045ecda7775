// What agent-list shows of a session, decided from what was observed: a
// pure classification, so every state is unit-tested without a VM. The
// observing (process table, monitor, guest agent) happens elsewhere.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "launcher/vm.h"
#include "sessions/meta.h"

namespace avm::sessions {

enum class SessionState {
  Running,       // QEMU runs the guest
  Paused,        // QEMU runs, the guest is paused
  Stopped,       // no VM: stopped on request, or the guest powered off by itself
  Crashed,       // no VM: QEMU went away without being asked
  Unresponsive,  // QEMU lives but its monitor does not answer, or it is frozen (SIGSTOP)
  Failed,        // spawn or resume could not boot it, or spawn did not finish
  Corrupt,       // meta.json cannot be read
  Other,         // QEMU answers with another status (shutdown, guest-panicked, ...)
};
// The word agent-list prints; Other has none (the monitor's word is shown).
std::string_view to_string(SessionState s);
// Whether agent-list prints a state's detail under its table.
bool detail_is_news(SessionState s);

// What agent-list shows of one session: observed, not remembered.
struct SessionStatus {
  std::string id;
  SessionState state = SessionState::Stopped;
  std::string status;      // to_string(state), or the monitor's status for Other
  std::string qmp_status;  // query-status' answer; empty when not asked or no answer
  std::string guest;       // "up", "no answer" (asked), "down" (its port closed), "-" (not running)
  std::string agent;       // "running", "exited", "-"
  std::string detail;      // why (corrupt meta, failure reason, monitor error)
  std::uint16_t ssh_port = 0;
  std::string repo, ref, commit, image, accel, net;
  std::string created;
  long long age_seconds = 0;
  std::optional<long long> pid;
  // The model gateway's meter (usage.json) and budget (gateway.json).
  long long input_tokens = 0, output_tokens = 0;
  std::optional<long long> max_tokens;
};

// What was seen of a session's VM.
struct VmSeen {
  // QEMU with the session's name and start time is in the process table.
  bool process_alive = false;
  // What observe_vm found, when the process was alive and was asked.
  std::optional<launcher::VmObservation> observation;
  // The console's last words are a clean power-off (read when a run dangles).
  bool console_poweroff = false;
};

SessionStatus classify(const Meta& m, const VmSeen& seen);
// A session whose meta.json cannot be read: `problem` says why.
SessionStatus classify_corrupt(const std::string& id, const std::string& problem);

}  // namespace avm::sessions
