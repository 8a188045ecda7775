// agent-rm: delete sessions.
#include <CLI/CLI.hpp>
#include <iostream>

#include "commands/command.h"
#include "commands/common.h"
#include "util/progress.h"

namespace avm::cmd {

namespace {

class Rm final : public Command {
 public:
  std::string name() const override { return "rm"; }
  std::string summary() const override { return "Delete a session and its folder"; }

  void configure(CLI::App& app) override {
    app.description(
        "Deletes the session folder: the clone, the agent's conversation, keys and\n"
        "logs. This cannot be undone. A running session is refused unless --force,\n"
        "which quits its VM first. Sessions with a corrupt meta.json can be removed.");
    app.add_option("ids", ids_, "Session ids or unique prefixes")->required();
    app.add_flag("-f,--force", force_, "Stop a running session's VM (quit) and remove it");
    app.footer("EXAMPLES\n  agent-rm k3f9\n  agent-rm --force k3f9 m2p8");
  }

  int run() override {
    Progress progress;
    auto store = open_store();
    for (const auto& id : ids_) {
      std::string full = store.resolve(id);
      sessions::remove(store, full, force_, progress);
      std::cout << "removed " << full << "\n";
    }
    return 0;
  }

 private:
  std::vector<std::string> ids_;
  bool force_ = false;
};

}  // namespace

std::unique_ptr<Command> make_rm() { return std::make_unique<Rm>(); }

}  // namespace avm::cmd
