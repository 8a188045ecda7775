// How a VM is stopped, as a state machine with no I/O: it is told what
// happened (the command was sent, SHUTDOWN came, QEMU exited, a wait ran
// out) and answers with the next action. The driver (stop.cc) only performs
// actions, so every escalation path is unit-tested in microseconds.
//
//   [cont] --> power button --(no SHUTDOWN by repress_after)--> power button again
//   --(no exit by timeout)--> quit --> SIGTERM --> SIGKILL
// `force` starts at quit. A guest-initiated SHUTDOWN waits for QEMU's exit.
// A paused guest (agent-vm pause) cannot see the power button: its vCPUs
// are stopped. It is continued first, then pressed; quit works on a paused
// VM as it is, so `force` does not continue it.
#pragma once

#include <chrono>
#include <string>

namespace avm::launcher {

using Ms = std::chrono::milliseconds;

// How a stop ended; recorded in the session's history.
enum class StopMethod { GuestPoweroff, Quit, Sigterm, Sigkill, Exited };
const char* to_string(StopMethod m);

struct StopPolicy {
  Ms timeout{60000};        // the guest's time to power off after the first press
  Ms repress_after{15000};  // press once more if no SHUTDOWN by then (guest was booting)
  Ms exit_grace{10000};     // after the guest's SHUTDOWN, QEMU's time to exit
  Ms quit_grace{5000};
  Ms term_grace{5000};
  Ms kill_grace{5000};
  bool force = false;       // skip the power button: quit at once
};

struct StopAction {
  enum class Kind {
    Cont,         // send cont (the guest is paused), then call on_continued()
    PowerButton,  // send system_powerdown, then wait
    Quit,         // send quit, then wait
    Signal,       // kill(pid, signal), then wait
    Wait,         // only wait, for `wait` from now
    Continue,     // keep waiting until the current step's deadline
    Done,         // finished: `method` says how
    Fail,         // QEMU survived everything: `detail` says what was tried
  } kind;
  Ms wait{0};         // how long to wait for the next event after acting
  int signal = 0;     // for Signal
  StopMethod method = StopMethod::Exited;  // for Done
  std::string detail;  // for Done/Fail: in words
};

class StopMachine {
 public:
  explicit StopMachine(StopPolicy policy) : p_(policy) {}

  // `paused`: QEMU reported the guest paused before the stop began.
  StopAction start(bool paused = false);
  // The Cont action's command was delivered: the guest runs again.
  StopAction on_continued();
  // The last action's command could not be delivered (QMP gone or hung).
  StopAction on_command_failed(const std::string& why);
  // A SHUTDOWN event arrived (guest: the guest asked for it).
  StopAction on_shutdown(bool guest, const std::string& reason);
  // QEMU's process has exited.
  StopAction on_exited();
  // The last action's wait ran out with nothing happening.
  StopAction on_wait_expired();

  // Steps taken so far, for messages: "power button, power button, quit".
  const std::string& trail() const { return trail_; }

 private:
  enum class State { Idle, Cont, Press1, Press2, ShutdownSeen, Quit, Term, Kill, Finished };
  StopAction enter(State s);
  StopAction done(StopMethod m, std::string detail);
  void step(const char* what);

  StopPolicy p_;
  State state_ = State::Idle;
  bool guest_shutdown_ = false;
  std::string shutdown_reason_;
  std::string trail_;
};

}  // namespace avm::launcher
