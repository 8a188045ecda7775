// agent-spawn: create a session and boot its VM.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "commands/command.h"
#include "commands/common.h"
#include "util/progress.h"

namespace avm::cmd {

namespace {

// SIGINT (Ctrl+C), SIGTERM and SIGHUP while spawn works. The first asks it
// to give up cleanly: a clone is abandoned and nothing is kept; a booting VM
// is stopped and its session marked failed. No SA_RESTART, so a read blocked
// on a silent server returns. A second signal ends spawn at once.
std::atomic<bool> g_interrupted{false};
volatile sig_atomic_t g_signal = 0;

void on_interrupt(int sig) {
  if (g_interrupted.exchange(true)) {
    ::signal(sig, SIG_DFL);
    ::raise(sig);
    return;
  }
  g_signal = sig;
}

class InterruptScope {
 public:
  InterruptScope() {
    struct sigaction sa {};
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    for (int s : kSignals) ::sigaction(s, &sa, &old_[index(s)]);
  }
  ~InterruptScope() {
    for (int s : kSignals) ::sigaction(s, &old_[index(s)], nullptr);
  }
  InterruptScope(const InterruptScope&) = delete;
  InterruptScope& operator=(const InterruptScope&) = delete;

 private:
  static constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP};
  static std::size_t index(int s) { return s == SIGINT ? 0 : s == SIGTERM ? 1 : 2; }
  struct sigaction old_[3] {};
};

class Spawn final : public Command {
 public:
  std::string name() const override { return "spawn"; }
  std::string summary() const override { return "Create a session: clone a repository and boot its VM"; }

  void configure(CLI::App& app) override {
    app.description(
        "Clones REPO into a new session folder on the host, boots a QEMU microVM that\n"
        "mounts the folder over 9p, and starts the agent (opencode) in a tmux session\n"
        "inside it. Prints the session id, its SSH port and how to attach. Progress goes\n"
        "to stderr.\n"
        "\n"
        "The agent reaches the model through the host's model gateway at\n"
        "http://10.0.2.100/v1: ANTHROPIC_API_KEY stays on the host (the session's\n"
        "host-only folder, mode 0600), never in the guest nor on a command line; the\n"
        "gateway adds it to each request, counts tokens and enforces --max-tokens.\n"
        "ANTHROPIC_BASE_URL, when set, is the model API the gateway forwards to\n"
        "(default https://api.anthropic.com; with or without a trailing /v1; https://,\n"
        "or http:// only on loopback). With --net none there is no network device and\n"
        "no gateway: the agent cannot reach the model.");
    app.add_option("--repo", req_.repo, "Git repository: https://, git://, ssh://, user@host:path, file:// or a local path")
        ->required()
        ->type_name("URL");
    app.add_option("--prompt", req_.prompt, "Initial prompt for the agent")->type_name("TEXT");
    app.add_option("--ref", req_.ref, "Branch, tag or commit to check out (default: the remote's default branch)")
        ->type_name("REF");
    app.add_option("--port", flags_.port, "SSH port on 127.0.0.1 (default: the first free from 2222)")->type_name("PORT");
    app.add_option("--cpus", flags_.cpus, "Virtual CPUs (default: 2)")->type_name("N");
    app.add_option("--memory", flags_.memory, "Guest memory, e.g. 2G or 512M (default: 2G; the real agent needs 2G)")
        ->type_name("SIZE");
    app.add_option("--image", flags_.image, "Guest image name or folder (default: default)")->type_name("IMAGE");
    app.add_option("--accel", flags_.accel, "auto, kvm or tcg (default: $AGENT_VM_ACCEL, else auto)")->type_name("ACCEL");
    app.add_option("--agent-cmd", agent_cmd_, "Shell command to run in tmux instead of opencode")->type_name("CMD");
    app.add_option("--env", req_.env_names, "Copy this environment variable into the guest (repeatable; a name, never NAME=VALUE)")
        ->type_name("NAME")
        ->allow_extra_args(false);
    app.add_option("--net", req_.net, "restricted (default): only allowed hosts, through the egress proxy;\n"
                                      "full: QEMU user networking; none: no network (nor model)")
        ->type_name("MODE")
        ->check(CLI::IsMember({"restricted", "full", "none"}));
    app.add_option("--allow-host", req_.allow_hosts, "With --net restricted: also allow HOST[:PORT] or *.DOMAIN (repeatable)")
        ->type_name("HOST")
        ->allow_extra_args(false);
    app.add_option("--max-tokens", max_tokens_, "Token budget (input+output) for the model; past it requests are refused")
        ->type_name("N")
        ->check(CLI::PositiveNumber);
    app.add_flag("--no-wait", flags_.no_wait, "Return once QEMU runs; do not wait for the guest and the agent");
    app.add_option("--timeout", flags_.timeout_s, "Seconds to wait for the VM to be ready (default: 300)")->type_name("SECONDS");
    app.add_flag("--json", json_, "Print the result as JSON");
    app.add_flag("-q,--quiet", quiet_, "Print only the session id");
    app.footer(
        "EXAMPLES\n"
        "  agent-spawn --repo https://github.com/user/project --prompt \"Fix the failing tests\"\n"
        "  agent-spawn --repo ../project --ref v1.2 --memory 4G --allow-host registry.npmjs.org\n"
        "  id=$(agent-spawn --repo file:///srv/git/p.git --agent-cmd 'make test; bash' -q)\n"
        "\n"
        "EXIT STATUS\n"
        "  0 when the agent runs (or QEMU runs, with --no-wait); 1 on any error. A clone\n"
        "  that fails leaves no session behind; a VM that fails to boot leaves the session\n"
        "  marked failed (see agent-logs, agent-resume, agent-rm). Ctrl+C (or SIGTERM,\n"
        "  SIGHUP) does the same: during the clone nothing is kept; during the boot the\n"
        "  VM is stopped and the session marked failed. A second Ctrl+C ends it at once.");
  }

  int run() override {
    if (!agent_cmd_.empty()) req_.agent_cmd = agent_cmd_;
    req_.start = flags_.to_options();
    if (max_tokens_) req_.start.max_tokens = *max_tokens_;
    if (const char* url = std::getenv("ANTHROPIC_BASE_URL"); url && *url) req_.upstream = url;
    Progress progress(quiet_ || json_);
    auto store = open_store();
    InterruptScope interrupts;
    req_.start.cancel = &g_interrupted;
    sessions::StartResult r;
    try {
      r = sessions::spawn(store, req_, progress);
    } catch (const Error& e) {
      if (!g_signal) throw;
      throw Error(std::string("interrupted by SIG") + ::sigabbrev_np(g_signal) + ": " + e.what(), e.hint());
    }
    print_started(r, json_, quiet_, "started");
    return 0;
  }

 private:
  sessions::SpawnRequest req_;
  StartFlags flags_;
  std::string agent_cmd_;
  std::optional<long long> max_tokens_;
  bool json_ = false, quiet_ = false;
};

}  // namespace

std::unique_ptr<Command> make_spawn() { return std::make_unique<Spawn>(); }

}  // namespace avm::cmd
