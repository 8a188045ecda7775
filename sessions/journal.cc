#include "sessions/journal.h"

namespace avm::sessions {

void begin_run(Meta& m, const std::string& now) {
  m.history.push_back(RunRecord{now, std::nullopt, std::nullopt, ""});
}

void end_run(Meta& m, StopHow how, const std::string& detail, const std::string& now) {
  if (!has_dangling_run(m)) begin_run(m, now);
  RunRecord& r = m.history.back();
  r.stopped = now;
  r.how = how;
  r.detail = detail;
  m.qemu_pid.reset();
  m.qemu_start_time.reset();
}

bool has_dangling_run(const Meta& m) { return !m.history.empty() && !m.history.back().stopped; }

StopHow dangling_end(bool console_shows_poweroff) {
  return console_shows_poweroff ? StopHow::GuestPoweroff : StopHow::Crash;
}

std::string_view dangling_detail(bool console_shows_poweroff) {
  return console_shows_poweroff ? "the guest powered off by itself" : "QEMU exited without being asked";
}

bool close_dangling_run(Meta& m, bool console_shows_poweroff, const std::string& now) {
  if (!has_dangling_run(m)) return false;
  end_run(m, dangling_end(console_shows_poweroff), std::string(dangling_detail(console_shows_poweroff)), now);
  if (m.intent == Intent::Running) m.intent = Intent::Stopped;
  return true;
}

}  // namespace avm::sessions
