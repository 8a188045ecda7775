// agent-attach: a terminal on the session's agent.
#include <CLI/CLI.hpp>

#include "commands/command.h"
#include "commands/common.h"
#include "sessions/attach.h"

namespace avm::cmd {

namespace {

class Attach final : public Command {
 public:
  std::string name() const override { return "attach"; }
  std::string summary() const override { return "Open a terminal on a session's agent (tmux over SSH)"; }

  void configure(CLI::App& app) override {
    app.description(
        "Connects over SSH (127.0.0.1, the session's port) with the session's own key\n"
        "and attaches to the agent's tmux session. The guest's host key must be the one\n"
        "pinned when the session was created: a mismatch is refused. The terminal's\n"
        "size follows resizes. Use Ctrl+B, D to detach without stopping the agent.");
    app.add_option("id", id_, "Session id, or any unique prefix of one")->required();
    app.add_option("--command", command_, "Run this instead of 'tmux attach -t agent'");
    app.footer("EXAMPLES\n  agent-attach k3f9\n  agent-attach k3f9 --command 'tmux capture-pane -p -t agent'");
  }

  int run() override {
    auto store = open_store();
    auto t = sessions::attach_target(store, id_);
    auto opts = sessions::attach_options(store.paths(t.id).ssh(), t.port);
    if (!command_.empty()) opts.command = command_;
    return sessions::attach(opts);
  }

 private:
  std::string id_, command_;
};

}  // namespace

std::unique_ptr<Command> make_attach() { return std::make_unique<Attach>(); }

}  // namespace avm::cmd
