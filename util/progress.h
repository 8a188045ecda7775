// Progress on anything slow. On a terminal a stage line is rewritten in place;
// otherwise each stage is one line, so logs stay readable.
#pragma once

#include <chrono>
#include <string>

namespace avm {

class Progress {
 public:
  // Writes to stderr. `quiet` suppresses everything but errors and warnings.
  explicit Progress(bool quiet = false);
  ~Progress();

  // Starts a named stage ("cloning", "booting").
  void stage(const std::string& name);
  // Updates the current stage's detail ("42% (1200/2800 objects)").
  void update(const std::string& detail);
  // Ends the current stage with a result ("done", "12.3s").
  void done(const std::string& result = {});
  // A line of its own, between stages.
  void note(const std::string& line);
  // Something that went wrong and was worked around: "warning: LINE", shown
  // even when quiet (stderr stays out of --json's stdout).
  void warn(const std::string& line);

  bool is_tty() const noexcept { return tty_; }

 private:
  void print_line(const std::string& line);
  bool quiet_;
  bool tty_;
  std::string current_;
  std::string last_detail_;
  std::chrono::steady_clock::time_point started_;
  std::chrono::steady_clock::time_point last_update_;
  bool open_line_ = false;
};

}  // namespace avm
