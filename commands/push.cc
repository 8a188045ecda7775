// agent-vm push: the agent's work as a branch of the session's origin.
#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <iostream>

#include "commands/command.h"
#include "commands/common.h"
#include "commands/render.h"
#include "commands/workback_print.h"
#include "sessions/workback.h"

namespace avm::cmd {

namespace {

namespace json = boost::json;

class Push final : public Command {
 public:
  std::string name() const override { return "push"; }
  std::string summary() const override { return "Push the agent's work to the session's origin as a branch"; }

  void configure(CLI::App& app) override {
    app.description(
        "Pushes the branch agent-vm export would write (default agent/ID: the\n"
        "agent's commits plus one commit of its uncommitted work) to the repository\n"
        "the session was cloned from: the URL recorded when it was spawned, never a\n"
        "remote the session repo's own config names. Credentials as for spawn's\n"
        "clone: keys from ssh-agent, SSH host keys checked against known_hosts.\n"
        "An existing branch there is replaced only with --force.");
    app.add_option("id", id_, "Session id, or any unique prefix of one")->required();
    app.add_option("--branch", branch_, "The branch to push (default: agent/ID)");
    app.add_flag("--force", force_, "Replace the branch there if it has other commits");
    app.add_flag("--json", json_, "Print the result as JSON");
    app.footer("EXAMPLES\n  agent-vm push k3f9\n  agent-vm push k3f9 --branch agent/login-fix");
  }

  int run() override {
    auto store = open_store();
    sessions::PushOptions o;
    o.branch = branch_;
    o.force = force_;
    auto r = sessions::push_work(store, id_, o);
    if (json_) {
      print_json(std::cout, json::object{{"id", r.id},
                                         {"url", r.url},
                                         {"branch", r.branch},
                                         {"tip", r.tip},
                                         {"running", r.running},
                                         {"warnings", to_json(r.warnings)},
                                         {"defused", to_json(r.defused)}});
      return 0;
    }
    if (r.running) print_running_note(std::cout, r.id);
    print_defused(std::cout, r.defused);
    std::cout << "pushed session " << r.id << " to " << r.url << " as branch " << r.branch << " ("
              << r.tip.substr(0, 12) << ")\n";
    print_warnings(std::cout, r.warnings);
    return 0;
  }

 private:
  std::string id_, branch_;
  bool force_ = false, json_ = false;
};

}  // namespace

std::unique_ptr<Command> make_push() { return std::make_unique<Push>(); }

}  // namespace avm::cmd
