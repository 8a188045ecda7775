// A subcommand of agent-vm: parses its options into itself, then runs.
// Front ends only: a Command calls the layers below and prints; it decides
// nothing a test of a lower layer could not reach.
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace avm::cmd {

class Command {
 public:
  virtual ~Command() = default;
  // The subcommand's name ("spawn") and its one-line summary for --help.
  virtual std::string name() const = 0;
  virtual std::string summary() const = 0;
  // Declares options and positionals on `app` (the subcommand's own App);
  // may set a longer description and footer for the man-page-like --help.
  virtual void configure(CLI::App& app) = 0;
  // Runs after a successful parse. Returns the process exit code; throws
  // avm::Error for failures the user can fix.
  virtual int run() = 0;
};

using CommandList = std::vector<std::unique_ptr<Command>>;

// Every subcommand, in the order --help lists them.
CommandList all_commands();

// Implemented in their own files.
std::unique_ptr<Command> make_spawn();
std::unique_ptr<Command> make_list();
std::unique_ptr<Command> make_attach();
std::unique_ptr<Command> make_stop();
std::unique_ptr<Command> make_pause(), make_unpause();
std::unique_ptr<Command> make_pool();
std::unique_ptr<Command> make_resume();
std::unique_ptr<Command> make_rm();
std::unique_ptr<Command> make_logs();
std::unique_ptr<Command> make_exec();
std::unique_ptr<Command> make_image();
std::unique_ptr<Command> make_doctor();
std::unique_ptr<Command> make_qmp();
std::unique_ptr<Command> make_qga();
std::unique_ptr<Command> make_egress();
std::unique_ptr<Command> make_diff(), make_export(), make_push();
std::unique_ptr<Command> make_gateway();
std::unique_ptr<Command> make_agent_test();

}  // namespace avm::cmd
