// agent-vm pause / unpause: stop a session's vCPUs, or let them run again.
#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <cmath>
#include <iostream>
#include <sstream>

#include "commands/command.h"
#include "commands/common.h"
#include "commands/render.h"

namespace avm::cmd {

namespace {

std::string seconds_text(std::chrono::nanoseconds d) {
  std::ostringstream o;
  o.setf(std::ios::fixed);
  o.precision(1);
  o << std::abs(static_cast<double>(d.count()) / 1e9) << " s";
  return o.str();
}

class Pause final : public Command {
 public:
  explicit Pause(bool pause) : pause_(pause) {}
  std::string name() const override { return pause_ ? "pause" : "unpause"; }
  std::string summary() const override {
    return pause_ ? "Pause a running session's VM: its vCPUs stop, its memory stays"
                  : "Continue a paused session's VM and set its clock to the host's";
  }

  void configure(CLI::App& app) override {
    if (pause_) {
      app.description(
          "Pauses the session's VM (QMP stop): the guest's vCPUs stand still and cost\n"
          "no host CPU; its memory, the agent's processes and their state stay as they\n"
          "are. QEMU itself keeps running: the session shows as 'paused' in agent-list,\n"
          "agent-stop and agent-rm --force work on it, and agent-vm unpause continues it.\n"
          "agent-exec and agent-attach refuse a paused session (the guest cannot answer).\n"
          "\n"
          "While paused the guest's clock stands still; unpause sets it to the host's.\n"
          "The agent's connections wait: the model gateway and the egress proxy on the\n"
          "host give up on a connection the guest has not read from or written to for\n"
          "10 minutes, and the model API may close a stalled answer sooner; the agent\n"
          "then sees the connection fail when it runs again, as after a network fault.\n"
          "Pausing a paused session does nothing and says so.");
    } else {
      app.description(
          "Continues a paused session's VM (QMP cont), then sets the guest's wall clock\n"
          "to the host's through the guest agent (guest-set-time): it stood still while\n"
          "the VM was paused. A guest agent that does not answer within 10 s leaves the\n"
          "clock as it was; the VM runs either way and the warning says so.\n"
          "Unpausing a running session does nothing and says so.");
    }
    app.add_option("ids", ids_, "Session ids or unique prefixes")->required();
    app.add_flag("--json", json_, "Print the result as JSON");
    app.footer(std::string("EXIT STATUS\n"
                           "  0 when every session is ") +
               (pause_ ? "paused" : "running") +
               " afterwards (also when it already was);\n"
               "  1 when a session is not running or its monitor does not answer.\n"
               "\n"
               "EXAMPLES\n" +
               (pause_ ? "  agent-vm pause k3f9\n  agent-vm pause --json k3f9 m2p8"
                       : "  agent-vm unpause k3f9\n  agent-vm unpause --json k3f9"));
  }

  int run() override {
    auto store = open_store();
    boost::json::array out;
    for (const auto& id : ids_) {
      auto r = sessions::pause(store, id, pause_);
      if (json_) {
        boost::json::object o{{"id", r.id}, {"changed", r.changed}, {"status", r.status}};
        if (!r.message.empty()) o["message"] = r.message;
        if (!pause_ && r.changed) {
          o["clock_offset_seconds"] = r.clock_offset
                                          ? boost::json::value(static_cast<double>(r.clock_offset->count()) / 1e9)
                                          : boost::json::value(nullptr);
          if (!r.clock_error.empty()) o["clock_error"] = r.clock_error;
        }
        out.push_back(o);
        continue;
      }
      if (!r.changed) {
        std::cout << r.message << "\n";
        continue;
      }
      if (pause_) {
        std::cout << r.id << " paused\n";
        continue;
      }
      std::cout << r.id << " running";
      if (r.clock_offset)
        std::cout << "; guest clock set to the host's (it was " << seconds_text(*r.clock_offset)
                  << (r.clock_offset->count() < 0 ? " behind" : " ahead") << ")";
      std::cout << "\n";
      if (!r.clock_error.empty())
        std::cerr << "warning: " << r.id << "'s guest clock was not set: " << r.clock_error
                  << " (it is behind by as long as the VM was paused)\n";
    }
    if (json_) print_json(std::cout, out);
    return 0;
  }

 private:
  bool pause_;
  std::vector<std::string> ids_;
  bool json_ = false;
};

}  // namespace

std::unique_ptr<Command> make_pause() { return std::make_unique<Pause>(true); }
std::unique_ptr<Command> make_unpause() { return std::make_unique<Pause>(false); }

}  // namespace avm::cmd
