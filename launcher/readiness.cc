#include "launcher/readiness.h"

#include "util/strings.h"

namespace avm::launcher {

const char* to_string(ReadyCheck c) {
  switch (c) {
    case ReadyCheck::Qmp: return "qmp";
    case ReadyCheck::Share: return "share";
    case ReadyCheck::GuestAgent: return "guest-agent";
    case ReadyCheck::Ssh: return "ssh";
    case ReadyCheck::Agent: return "agent";
  }
  return "?";
}

const char* describe(ReadyCheck c) {
  switch (c) {
    case ReadyCheck::Qmp: return "QEMU monitor";
    case ReadyCheck::Share: return "9p share";
    case ReadyCheck::GuestAgent: return "guest agent";
    case ReadyCheck::Ssh: return "sshd";
    case ReadyCheck::Agent: return "agent's tmux session";
  }
  return "?";
}

ReadinessMachine::ReadinessMachine(Ms timeout, Ms retry, ReadyCheck last, ReadyCheck first)
    : timeout_(timeout), retry_(retry), last_(last), current_(first) {}

ReadyAction ReadinessMachine::next(Ms elapsed) {
  using K = ReadyAction::Kind;
  if (failed_) return {K::Fail, current_, Ms(0), fail_detail_};
  if (done_) return {K::Ready};
  if (elapsed >= timeout_) {
    failed_ = true;
    fail_detail_ = "timed out after " + human_duration_ms(timeout_) + " waiting for the " +
                   describe(current_) + (last_detail_.empty() ? "" : " (" + last_detail_ + ")");
    return {K::Fail, current_, Ms(0), fail_detail_};
  }
  if (elapsed < next_try_) return {K::Wait, current_, std::min(next_try_, timeout_) - elapsed};
  return {K::Check, current_};
}

void ReadinessMachine::on_result(ReadyCheck c, bool ok, const std::string& detail, Ms elapsed,
                                 bool fatal) {
  if (done_ || failed_ || c != current_) return;
  if (ok) {
    passed_.push_back({c, elapsed});
    last_detail_.clear();
    next_try_ = elapsed;
    if (c == last_)
      done_ = true;
    else
      current_ = static_cast<ReadyCheck>(static_cast<int>(c) + 1);
    return;
  }
  last_detail_ = detail;
  if (fatal) {
    failed_ = true;
    fail_detail_ = std::string(describe(c)) + ": " + detail;
    return;
  }
  next_try_ = elapsed + retry_;
}

void ReadinessMachine::on_exited(const std::string& detail, Ms) {
  if (done_ || failed_) return;
  failed_ = true;
  fail_detail_ = "QEMU exited while waiting for the " + std::string(describe(current_)) +
                 (detail.empty() ? "" : ": " + detail);
}

}  // namespace avm::launcher
