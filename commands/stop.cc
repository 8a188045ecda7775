// agent-stop: press the power button and wait for the guest to shut down.
#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <iostream>

#include "commands/command.h"
#include "commands/common.h"
#include "commands/render.h"
#include "commands/workback_print.h"
#include "util/progress.h"
#include "util/strings.h"

namespace avm::cmd {

namespace {

class Stop final : public Command {
 public:
  std::string name() const override { return "stop"; }
  std::string summary() const override { return "Press the VM's power button and wait for it to shut down"; }

  void configure(CLI::App& app) override {
    app.description(
        "Presses the VM's ACPI power button (QMP system_powerdown). The guest stops\n"
        "the agent politely, syncs and unmounts /session and powers off; agent-stop\n"
        "waits for QEMU to exit. A guest still booting gets a second press. After\n"
        "--timeout seconds it escalates: QMP quit, then SIGTERM, then SIGKILL, and\n"
        "records which step ended it. Session files are preserved; agent-resume\n"
        "continues the session. Stopping a stopped session does nothing and says so.\n"
        "\n"
        "Once QEMU is gone, the session repo is defused: git config keys that would\n"
        "run a program (core.fsmonitor, core.hooksPath, filter drivers, aliases with\n"
        "'!', ...), its hooks, commondir and alternates are removed, and copies kept in\n"
        "<sessions>/.host/ID/defused/TIME/, outside the share. It prints what it\n"
        "removed. Still, take the work with agent-vm export rather than git there.");
    app.add_option("ids", ids_, "Session ids or unique prefixes")->required();
    app.add_option("--timeout", timeout_s_, "Seconds the guest gets to power off before escalation (default: 60)");
    app.add_flag("--force", force_, "Skip the power button: quit QEMU at once (the guest gets no chance to sync)");
    app.add_flag("--json", json_, "Print the result as JSON");
    app.footer("EXAMPLES\n  agent-stop k3f9\n  agent-stop --timeout 10 k3f9 m2p8");
  }

  int run() override {
    launcher::StopPolicy policy;
    policy.timeout = std::chrono::seconds(timeout_s_);
    policy.repress_after = std::min(policy.repress_after, policy.timeout / 2);
    policy.force = force_;
    Progress progress(json_);
    auto store = open_store();
    boost::json::array out;
    for (const auto& id : ids_) {
      auto r = sessions::stop(store, id, policy, progress);
      if (json_) {
        boost::json::object o{{"id", r.id}, {"was_running", r.was_running}};
        if (r.was_running) {
          o["method"] = r.method;
          o["detail"] = r.detail;
          o["steps"] = r.trail;
          o["seconds"] = static_cast<double>(r.took.count()) / 1000.0;
        }
        o["defused"] = to_json(r.defused);
        if (!r.defused.error.empty()) o["defuse_error"] = r.defused.error;
        out.push_back(o);
      } else if (!r.was_running) {
        std::cout << r.id << " is not running; nothing to do\n";
      } else {
        std::cout << r.id << " stopped by " << r.method << ": " << r.detail << " (" << r.trail << ", "
                  << human_duration_ms(r.took) << ")\n";
      }
      if (!json_) {
        print_defused(std::cout, r.defused);
        if (!r.defused.error.empty())
          std::cerr << "warning: could not defuse " << r.id << "'s repo: " << r.defused.error << "\n";
      }
    }
    if (json_) print_json(std::cout, out);
    return 0;
  }

 private:
  std::vector<std::string> ids_;
  unsigned timeout_s_ = 60;
  bool force_ = false, json_ = false;
};

}  // namespace

std::unique_ptr<Command> make_stop() { return std::make_unique<Stop>(); }

}  // namespace avm::cmd
