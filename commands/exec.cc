// agent-exec: run one command in a session's guest.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "commands/command.h"
#include "commands/common.h"
#include "util/error.h"

namespace avm::cmd {

namespace {

constexpr int kOwnFailure = 125;

class Exec final : public Command {
 public:
  std::string name() const override { return "exec"; }
  std::string summary() const override { return "Run one command in a session's guest; its exit code is passed through"; }

  void configure(CLI::App& app) override {
    app.description(
        "Runs COMMAND in the session's guest through the guest agent (QGA), as the\n"
        "agent's user in /session/repo with the agent's environment (or as root with\n"
        "--root). Its stdout and stderr are printed as they were, and its exit status\n"
        "becomes agent-exec's.");
    app.add_option("id", id_, "Session id, or any unique prefix of one")->required();
    app.add_option("command", argv_, "The command and its arguments (after --)")->required();
    app.add_flag("--root", req_.as_root, "Run as root instead of the agent's user");
    app.add_flag("-i,--stdin", stdin_, "Pass this process's stdin to the command");
    app.add_option("--timeout", timeout_s_, "Seconds before the command is abandoned (default: 600)");
    app.footer(
        "EXIT STATUS\n"
        "  The command's own exit status (128+N when signal N ended it); 125 when\n"
        "  agent-exec itself failed (no such session, not running, no guest agent).\n"
        "\n"
        "EXAMPLES\n"
        "  agent-exec k3f9 -- git log --oneline -3\n"
        "  agent-exec k3f9 --root -- journalctl -b --no-pager\n"
        "  echo data | agent-exec k3f9 -i -- wc -c");
  }

  int run() override {
    try {
      req_.argv = argv_;
      req_.timeout = std::chrono::seconds(timeout_s_);
      if (stdin_) {
        std::string in;
        char buf[65536];
        ssize_t n;
        while ((n = ::read(STDIN_FILENO, buf, sizeof buf)) > 0) in.append(buf, static_cast<size_t>(n));
        req_.input = std::move(in);
      }
      auto store = open_store();
      auto r = sessions::exec(store, id_, req_);
      std::cout << r.out << std::flush;
      std::cerr << r.err << std::flush;
      return r.exit_code;
    } catch (const Error& e) {
      std::cerr << "agent-exec: error: " << e.what() << "\n";
      if (!e.hint().empty()) std::cerr << "  hint: " << e.hint() << "\n";
      return kOwnFailure;
    }
  }

 private:
  std::string id_;
  std::vector<std::string> argv_;
  sessions::ExecRequest req_;
  bool stdin_ = false;
  unsigned timeout_s_ = 600;
};

}  // namespace

std::unique_ptr<Command> make_exec() { return std::make_unique<Exec>(); }

}  // namespace avm::cmd
