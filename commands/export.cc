// agent-vm export: the agent's work as a branch of the user's repository.
#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <iostream>

#include "commands/command.h"
#include "commands/common.h"
#include "commands/render.h"
#include "commands/workback_print.h"
#include "sessions/workback.h"
#include "util/strings.h"

namespace avm::cmd {

namespace {

namespace json = boost::json;

class Export final : public Command {
 public:
  std::string name() const override { return "export"; }
  std::string summary() const override { return "Write the agent's work into your repository as a branch"; }

  void configure(CLI::App& app) override {
    app.description(
        "Writes the agent's work into your own repository as a new branch (default\n"
        "agent/ID): the agent's commits since the session's start commit, copied\n"
        "object by object, plus one more commit holding what it left uncommitted or\n"
        "untracked, made on the host with the identity\n"
        "\"agent-vm session ID <agent@ID.agent-vm>\". Only that branch is written (with\n"
        "a reflog entry): your HEAD, index and working tree are not touched.\n"
        "\n"
        "The repository is the local one the session was cloned from, or --to PATH\n"
        "(required when the session was cloned from a URL). An existing branch is\n"
        "refused unless --force, and never replaced while it is checked out.\n"
        "\n"
        "This is the supported way to take the work: never run git inside the\n"
        "session folder while its VM runs. The session repo is read with libgit2 as\n"
        "data (its config, hooks, attributes and filters are not used and no program\n"
        "runs); a stopped session's repo is defused first. Warnings are as for\n"
        "agent-vm diff.");
    app.add_option("id", id_, "Session id, or any unique prefix of one")->required();
    app.add_option("--to", to_, "The repository to write the branch into (default: the session's local source)");
    app.add_option("--branch", branch_, "The branch to write (default: agent/ID)");
    app.add_flag("--force", force_, "Replace the branch if it exists");
    app.add_flag("--json", json_, "Print the result as JSON");
    app.footer(
        "EXAMPLES\n"
        "  agent-vm export k3f9\n"
        "  agent-vm export k3f9 --to ~/src/project --branch agent/login-fix\n"
        "  git log -p main..agent/k3f9      (review it, then)  git merge agent/k3f9");
  }

  int run() override {
    auto store = open_store();
    sessions::ExportOptions o;
    if (!to_.empty()) o.to = to_;
    o.branch = branch_;
    o.force = force_;
    auto r = sessions::export_work(store, id_, o);
    std::string review = "git -C " + shell_quote(r.repo.string()) + " log -p " + r.base.substr(0, 12) + ".." + r.branch;
    std::string merge = "git -C " + shell_quote(r.repo.string()) + " merge " + r.branch;
    if (json_) {
      json::object out{{"id", r.id},
                       {"repo", r.repo.string()},
                       {"branch", r.branch},
                       {"base", r.base},
                       {"tip", r.tip},
                       {"replaced", r.replaced ? json::value(*r.replaced) : json::value(nullptr)},
                       {"commits", r.commits},
                       {"uncommitted_commit", r.uncommitted_commit},
                       {"identity", r.identity.empty() ? json::value(nullptr) : json::value(r.identity)},
                       {"objects_written", r.objects_written},
                       {"running", r.running},
                       {"warnings", to_json(r.warnings)},
                       {"defused", to_json(r.defused)},
                       {"review", review},
                       {"merge", merge}};
      print_json(std::cout, out);
      return 0;
    }
    if (r.running) print_running_note(std::cout, r.id);
    print_defused(std::cout, r.defused);
    std::cout << "exported session " << r.id << " to " << r.repo.string() << " as branch " << r.branch << " ("
              << r.tip.substr(0, 12) << (r.replaced ? ", replacing " + r.replaced->substr(0, 12) : "") << ")\n"
              << "  " << r.commits << " commit" << (r.commits == 1 ? "" : "s") << " by the agent";
    if (r.uncommitted_commit) std::cout << ", plus one commit of its uncommitted work by " << r.identity;
    std::cout << "\n"
              << "  review:  " << review << "\n"
              << "  merge:   " << merge << "\n";
    print_warnings(std::cout, r.warnings);
    return 0;
  }

 private:
  std::string id_, to_, branch_;
  bool force_ = false, json_ = false;
};

}  // namespace

std::unique_ptr<Command> make_export() { return std::make_unique<Export>(); }

}  // namespace avm::cmd
