#include "sessions/status.h"

#include "sessions/journal.h"

namespace avm::sessions {

namespace L = avm::launcher;

std::string_view to_string(SessionState s) {
  switch (s) {
    case SessionState::Running: return "running";
    case SessionState::Paused: return "paused";
    case SessionState::Stopped: return "stopped";
    case SessionState::Crashed: return "crashed";
    case SessionState::Unresponsive: return "unresponsive";
    case SessionState::Failed: return "failed";
    case SessionState::Corrupt: return "corrupt";
    case SessionState::Other: return "other";
  }
  return "other";
}

bool detail_is_news(SessionState s) {
  return s == SessionState::Corrupt || s == SessionState::Failed || s == SessionState::Crashed ||
         s == SessionState::Unresponsive;
}

namespace {

// GUEST and AGENT when nobody was asked. (Assigned char by char: GCC 12
// warns falsely (-Wrestrict) on a one-letter literal here.)
void not_asked(SessionStatus& s) {
  s.guest.assign(1, '-');
  s.agent.assign(1, '-');
}

SessionStatus with_state(SessionStatus s, SessionState state, std::string detail = {}) {
  s.state = state;
  s.status = std::string(to_string(state));
  if (!detail.empty()) s.detail = std::move(detail);
  return s;
}

SessionState from_qmp(const std::string& status) {
  if (status == "running") return SessionState::Running;
  if (status == "paused") return SessionState::Paused;
  return SessionState::Other;
}

}  // namespace

SessionStatus classify_corrupt(const std::string& id, const std::string& problem) {
  SessionStatus s;
  s.id = id;
  not_asked(s);
  return with_state(std::move(s), SessionState::Corrupt, problem);
}

SessionStatus classify(const Meta& m, const VmSeen& seen) {
  SessionStatus s;
  s.id = m.id;
  s.ssh_port = m.ssh_port;
  s.repo = m.repo_url;
  s.ref = m.checked_out.empty() ? m.ref : m.checked_out;
  s.commit = m.commit;
  s.image = m.image;
  s.accel = m.accelerator;
  s.net = m.net;
  s.created = m.created;
  not_asked(s);

  using P = L::VmObservation::Process;
  bool alive = seen.process_alive && !(seen.observation && seen.observation->process == P::Exited);
  if (!alive) {
    if (seen.process_alive)  // it died as it was being asked
      return with_state(std::move(s), SessionState::Crashed, std::string(dangling_detail(false)));
    bool dangling = has_dangling_run(m);
    if (m.intent == Intent::Failed) return with_state(std::move(s), SessionState::Failed, m.intent_reason);
    if (m.intent == Intent::Creating && !dangling)
      return with_state(std::move(s), SessionState::Failed, "spawn did not finish");
    if (dangling)
      return with_state(std::move(s), seen.console_poweroff ? SessionState::Stopped : SessionState::Crashed,
                        std::string(dangling_detail(seen.console_poweroff)));
    std::string detail;
    if (!m.history.empty() && m.history.back().how)
      detail = "last stop: " + std::string(to_string(*m.history.back().how));
    return with_state(std::move(s), SessionState::Stopped, detail);
  }

  if (m.qemu_pid) s.pid = *m.qemu_pid;
  if (!seen.observation) return with_state(std::move(s), SessionState::Running);
  const L::VmObservation& o = *seen.observation;
  s.qmp_status = o.qmp_status;
  if (o.process == P::Frozen) {
    s = with_state(std::move(s), SessionState::Unresponsive, "QEMU is stopped (SIGSTOP)");
  } else if (o.qmp_status.empty()) {
    s = with_state(std::move(s), SessionState::Unresponsive, "the monitor does not answer: " + o.monitor_error);
  } else {
    s = with_state(std::move(s), from_qmp(o.qmp_status));
    if (s.state == SessionState::Other) s.status = o.qmp_status;  // shutdown, guest-panicked, ...
  }
  using G = L::VmObservation::Guest;
  using A = L::VmObservation::Agent;
  s.guest = o.guest == G::Up ? "up" : o.guest == G::NoAnswer ? "no answer" : o.guest == G::Closed ? "down" : "-";
  s.agent = o.agent == A::Running ? "running" : o.agent == A::Exited ? "exited" : "-";
  if (o.agent == A::Exited && s.detail.empty()) s.detail = o.agent_detail;
  return s;
}

}  // namespace avm::sessions
