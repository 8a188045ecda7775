// Progress on anything slow. On a terminal a stage line is rewritten in place;
// otherwise each stage is one line, so logs stay readable.
#pragma once

#include <chrono>
#include <string>

namespace avm {

class Progress {
 public:
  // Writes to stderr. `quiet` suppresses everything but errors.
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

  bool is_tty() const noexcept { return tty_; }

 private:
  bool quiet_;
  bool tty_;
  std::string current_;
  std::string last_detail_;
  std::chrono::steady_clock::time_point started_;
  std::chrono::steady_clock::time_point last_update_;
  bool open_line_ = false;
};

}  // namespace avm
