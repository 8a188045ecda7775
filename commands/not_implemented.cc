#include <CLI/CLI.hpp>

#include "commands/command.h"
#include "util/error.h"

namespace avm::cmd {

namespace {

class NotImplemented final : public Command {
 public:
  NotImplemented(std::string name, std::string summary)
      : name_(std::move(name)), summary_(std::move(summary)) {}
  std::string name() const override { return name_; }
  std::string summary() const override { return summary_; }
  void configure(CLI::App& app) override {
    app.allow_extras();
    app.prefix_command();
  }
  int run() override {
    throw Error("'" + name_ + "' is not implemented yet in this build of agent-vm " AGENT_VM_VERSION);
  }

 private:
  std::string name_, summary_;
};

}  // namespace

std::unique_ptr<Command> make_not_implemented(std::string name, std::string summary) {
  return std::make_unique<NotImplemented>(std::move(name), std::move(summary));
}

}  // namespace avm::cmd
