// Waiting for a booted VM to be usable, as a state machine with no I/O.
// Checks run in order, each retried until it passes or the deadline ends:
//   qmp (monitor answers) -> share (9p device and tag confirmed through QOM)
//   -> guest-agent (QGA sync) -> ssh (sshd banner through the forward)
//   -> agent (tmux session `agent` exists, read from files in the guest;
//   never the agent's UI).
// QEMU exiting at any point ends the wait at once.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace avm::launcher {

enum class ReadyCheck { Qmp, Share, GuestAgent, Ssh, Agent };
const char* to_string(ReadyCheck c);
// What the user is told while it runs: "waiting for the guest agent".
const char* describe(ReadyCheck c);

struct ReadyAction {
  enum class Kind { Check, Wait, Ready, Fail } kind;
  ReadyCheck check = ReadyCheck::Qmp;  // for Check: which one to run now
  std::chrono::milliseconds wait{0};   // for Wait
  std::string detail;                  // for Fail
};

class ReadinessMachine {
 public:
  using Ms = std::chrono::milliseconds;
  // `last` is the last check that must pass (`Share` for --no-wait).
  // `first` is where the wait starts: a VM booted earlier (a warm-pool VM
  // at its claim) has passed the checks before it.
  ReadinessMachine(Ms timeout, Ms retry_interval, ReadyCheck last = ReadyCheck::Agent,
                   ReadyCheck first = ReadyCheck::Qmp);

  // What to do at `elapsed` since the start.
  ReadyAction next(Ms elapsed);
  // The result of the check `next` asked for. A failure of a check that
  // cannot get better by waiting (`fatal`) ends the wait.
  void on_result(ReadyCheck c, bool ok, const std::string& detail, Ms elapsed, bool fatal = false);
  void on_exited(const std::string& detail, Ms elapsed);

  ReadyCheck current() const { return current_; }
  // When each passed check passed, for progress and the benchmarks.
  struct Passed {
    ReadyCheck check;
    Ms at;
  };
  const std::vector<Passed>& passed() const { return passed_; }

 private:
  Ms timeout_, retry_;
  ReadyCheck last_;
  ReadyCheck current_ = ReadyCheck::Qmp;
  bool done_ = false;
  bool failed_ = false;
  std::string fail_detail_;
  std::string last_detail_;
  Ms next_try_{0};
  std::vector<Passed> passed_;
};

}  // namespace avm::launcher
