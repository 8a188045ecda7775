#include "util/progress.h"

#include <unistd.h>

#include <cstdio>

#include "util/strings.h"

namespace avm {

using namespace std::chrono;

Progress::Progress(bool quiet) : quiet_(quiet), tty_(::isatty(STDERR_FILENO) == 1) {}

Progress::~Progress() {
  if (open_line_ && tty_) std::fputs("\n", stderr);
}

void Progress::stage(const std::string& name) {
  if (!current_.empty()) done();
  current_ = name;
  last_detail_.clear();
  started_ = steady_clock::now();
  if (quiet_) return;
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s ...", name.c_str());
    open_line_ = true;
  }
  std::fflush(stderr);
}

void Progress::update(const std::string& detail) {
  if (quiet_ || current_.empty()) return;
  last_detail_ = detail;
  if (!tty_) return;  // Logs get the stage and its result, not every tick.
  auto now = steady_clock::now();
  if (now - last_update_ < milliseconds(100)) return;
  last_update_ = now;
  std::fprintf(stderr, "\r\033[K%s ... %s", current_.c_str(), detail.c_str());
  std::fflush(stderr);
}

void Progress::done(const std::string& result) {
  if (current_.empty()) return;
  auto took = duration_cast<milliseconds>(steady_clock::now() - started_);
  if (!quiet_) {
    std::string r = result.empty() ? "done" : result;
    if (tty_)
      std::fprintf(stderr, "\r\033[K%s ... %s (%s)\n", current_.c_str(), r.c_str(),
                   human_duration_ms(took).c_str());
    else
      std::fprintf(stderr, "%s ... %s (%s)\n", current_.c_str(), r.c_str(),
                   human_duration_ms(took).c_str());
    std::fflush(stderr);
  }
  open_line_ = false;
  current_.clear();
}

void Progress::note(const std::string& line) {
  if (quiet_) return;
  print_line(line);
}

void Progress::warn(const std::string& line) { print_line("warning: " + line); }

void Progress::print_line(const std::string& line) {
  if (open_line_ && tty_) std::fputs("\r\033[K", stderr);
  std::fprintf(stderr, "%s\n", line.c_str());
  if (open_line_ && tty_) std::fprintf(stderr, "%s ... %s", current_.c_str(), last_detail_.c_str());
  std::fflush(stderr);
}

}  // namespace avm
