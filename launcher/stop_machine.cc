#include "launcher/stop_machine.h"

#include <csignal>

namespace avm::launcher {

const char* to_string(StopMethod m) {
  switch (m) {
    case StopMethod::GuestPoweroff: return "guest-poweroff";
    case StopMethod::Quit: return "quit";
    case StopMethod::Sigterm: return "sigterm";
    case StopMethod::Sigkill: return "sigkill";
    case StopMethod::Exited: return "exited";
  }
  return "?";
}

void StopMachine::step(const char* what) {
  if (!trail_.empty()) trail_ += ", ";
  trail_ += what;
}

StopAction StopMachine::done(StopMethod m, std::string detail) {
  state_ = State::Finished;
  return {StopAction::Kind::Done, Ms(0), 0, m, std::move(detail)};
}

StopAction StopMachine::enter(State s) {
  state_ = s;
  using K = StopAction::Kind;
  switch (s) {
    case State::Cont:
      step("cont");
      return {K::Cont, Ms(0)};
    case State::Press1:
      step("power button");
      return {K::PowerButton, std::min(p_.repress_after, p_.timeout)};
    case State::Press2:
      step("power button again");
      return {K::PowerButton, p_.timeout > p_.repress_after ? p_.timeout - p_.repress_after : Ms(0)};
    case State::ShutdownSeen:
      return {K::Wait, p_.exit_grace};
    case State::Quit:
      step("quit");
      return {K::Quit, p_.quit_grace};
    case State::Term:
      step("SIGTERM");
      return {K::Signal, p_.term_grace, SIGTERM};
    case State::Kill:
      step("SIGKILL");
      return {K::Signal, p_.kill_grace, SIGKILL};
    case State::Idle:
    case State::Finished:
      break;
  }
  return {K::Fail, Ms(0), 0, StopMethod::Exited, "stop machine entered an invalid state"};
}

StopAction StopMachine::start(bool paused) {
  if (p_.force) return enter(State::Quit);
  return enter(paused ? State::Cont : State::Press1);
}

StopAction StopMachine::on_continued() {
  if (state_ != State::Cont) return {StopAction::Kind::Continue};
  return enter(State::Press1);
}

StopAction StopMachine::on_command_failed(const std::string& why) {
  switch (state_) {
    case State::Cont:
    case State::Press1:
    case State::Press2:
    case State::Quit: {
      // Without a monitor, only signals are left.
      StopAction a = enter(State::Term);
      a.detail = why;
      return a;
    }
    default:
      return {StopAction::Kind::Continue};
  }
}

StopAction StopMachine::on_shutdown(bool guest, const std::string& reason) {
  if (guest) {
    guest_shutdown_ = true;
    shutdown_reason_ = reason;
  }
  switch (state_) {
    case State::Press1:
    case State::Press2:
      return enter(State::ShutdownSeen);
    default:
      // Already escalating: keep waiting for the exit the current step expects.
      return {StopAction::Kind::Continue};
  }
}

StopAction StopMachine::on_exited() {
  switch (state_) {
    case State::Cont:
    case State::Press1:
    case State::Press2:
    case State::ShutdownSeen:
      if (guest_shutdown_)
        return done(StopMethod::GuestPoweroff, "the guest powered off (" + shutdown_reason_ + ")");
      return done(StopMethod::Exited, "QEMU exited without a guest shutdown event");
    case State::Quit:
      return done(StopMethod::Quit, "QEMU quit on the monitor's command");
    case State::Term:
      return done(StopMethod::Sigterm, "QEMU exited on SIGTERM");
    case State::Kill:
      return done(StopMethod::Sigkill, "QEMU was killed (SIGKILL)");
    case State::Idle:
      return done(StopMethod::Exited, "QEMU was not running");
    case State::Finished:
      break;
  }
  return {StopAction::Kind::Continue};
}

StopAction StopMachine::on_wait_expired() {
  switch (state_) {
    case State::Cont:  // cont is answered at once; no wait follows it
      return enter(State::Press1);
    case State::Press1:
      if (p_.timeout > p_.repress_after) return enter(State::Press2);
      return enter(State::Quit);
    case State::Press2:
    case State::ShutdownSeen:
      return enter(State::Quit);
    case State::Quit:
      return enter(State::Term);
    case State::Term:
      return enter(State::Kill);
    case State::Kill:
      state_ = State::Finished;
      return {StopAction::Kind::Fail, Ms(0), 0, StopMethod::Exited,
              "QEMU is still running after " + trail_};
    case State::Idle:
    case State::Finished:
      break;
  }
  return {StopAction::Kind::Continue};
}

}  // namespace avm::launcher
