// agent-resume: boot a new VM on a stopped session.
#include <CLI/CLI.hpp>

#include "commands/command.h"
#include "commands/common.h"
#include "util/progress.h"

namespace avm::cmd {

namespace {

class Resume final : public Command {
 public:
  std::string name() const override { return "resume"; }
  std::string summary() const override { return "Boot a new VM on a stopped session; the agent continues"; }

  void configure(CLI::App& app) override {
    app.description(
        "Boots a fresh VM on the session's folder. The agent starts again with\n"
        "'opencode --continue', so its conversation carries on where it stopped. The\n"
        "session keeps its SSH port unless that port is taken now; then the first free\n"
        "one is used and printed. --prompt gives it a new instruction to continue with.\n"
        "When the warm pool (agent-vm pool) has a ready VM of the session's memory, vCPUs\n"
        "and network mode and neither --port nor --accel is given, the session moves onto\n"
        "that VM instead of booting one, and takes its SSH port.");
    app.add_option("id", id_, "Session id, or any unique prefix of one")->required();
    app.add_option("--port", flags_.port, "SSH port on 127.0.0.1 (default: the session's, else the first free)")->type_name("PORT");
    app.add_option("--cpus", flags_.cpus, "Virtual CPUs (default: as before)")->type_name("N");
    app.add_option("--memory", flags_.memory, "Guest memory, e.g. 2G (default: as before)")->type_name("SIZE");
    app.add_option("--image", flags_.image, "Guest image (default: as before)")->type_name("IMAGE");
    app.add_option("--accel", flags_.accel, "auto, kvm or tcg (default: $AGENT_VM_ACCEL, else auto)")->type_name("ACCEL");
    app.add_option("--prompt", prompt_, "A new instruction for the agent, continuing its conversation")
        ->type_name("TEXT");
    app.add_option("--max-tokens", max_tokens_, "Raise (or set) the session's token budget (input+output)")
        ->type_name("N")
        ->check(CLI::PositiveNumber);
    app.add_flag("--no-wait", flags_.no_wait, "Return once QEMU runs; do not wait for the guest and the agent");
    app.add_option("--timeout", flags_.timeout_s, "Seconds to wait for the VM to be ready (default: 300)")->type_name("SECONDS");
    app.add_flag("--json", json_, "Print the result as JSON");
    app.add_flag("-q,--quiet", quiet_, "Print only the session id");
    app.footer(
        "EXAMPLES\n  agent-resume k3f9\n  agent-resume k3f9 --memory 4G\n"
        "  agent-resume k3f9 --max-tokens 2000000 --prompt \"Now add tests\"");
  }

  int run() override {
    Progress progress(quiet_ || json_);
    auto store = open_store();
    auto opts = flags_.to_options();
    if (max_tokens_) opts.max_tokens = *max_tokens_;
    opts.followup = prompt_;
    auto r = sessions::resume(store, id_, opts, progress);
    print_started(r, json_, quiet_, "resumed");
    return 0;
  }

 private:
  std::string id_;
  StartFlags flags_;
  std::optional<std::string> prompt_;
  std::optional<long long> max_tokens_;
  bool json_ = false, quiet_ = false;
};

}  // namespace

std::unique_ptr<Command> make_resume() { return std::make_unique<Resume>(); }

}  // namespace avm::cmd
