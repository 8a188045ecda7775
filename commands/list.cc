// agent-list: every session with its observed state.
#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <iostream>

#include "commands/command.h"
#include "commands/common.h"
#include "commands/render.h"
#include "sessions/repo_files.h"
#include "util/strings.h"

namespace avm::cmd {

namespace {

// Config keys and hooks in a running session's repo that would run a
// program if git ran there (a stopped session's are removed by agent-stop).
std::vector<std::string> traps_of(const sessions::SessionStore& store, const sessions::SessionStatus& s) {
  std::vector<std::string> out;
  if (s.status == "stopped" || s.status == "failed" || s.status == "corrupt" || s.status == "crashed") return out;
  try {
    for (const auto& w : sessions::repo_traps(store.paths(s.id))) out.push_back(w.path);
  } catch (const std::exception&) {
    out.push_back("(unreadable .git)");
  }
  return out;
}

boost::json::object to_json(const sessions::SessionStatus& s, const std::vector<std::string>& traps) {
  boost::json::object o;
  o["id"] = s.id;
  o["status"] = s.status;
  o["qmp_status"] = s.qmp_status.empty() ? boost::json::value(nullptr) : boost::json::value(s.qmp_status);
  o["guest"] = s.guest;
  o["agent"] = s.agent;
  o["ssh_port"] = s.ssh_port ? boost::json::value(s.ssh_port) : boost::json::value(nullptr);
  o["repo"] = s.repo;
  o["ref"] = s.ref;
  o["commit"] = s.commit;
  o["image"] = s.image;
  o["accel"] = s.accel;
  o["net"] = s.net;
  o["created"] = s.created;
  o["age_seconds"] = s.age_seconds;
  o["pid"] = s.pid ? boost::json::value(*s.pid) : boost::json::value(nullptr);
  o["detail"] = s.detail;
  boost::json::array t;
  for (const auto& x : traps) t.push_back(boost::json::value(x));
  o["repo_traps"] = t;
  o["input_tokens"] = s.input_tokens;
  o["output_tokens"] = s.output_tokens;
  o["max_tokens"] = s.max_tokens ? boost::json::value(*s.max_tokens) : boost::json::value(nullptr);
  return o;
}

class List final : public Command {
 public:
  std::string name() const override { return "list"; }
  std::string summary() const override { return "List sessions with their observed state"; }

  void configure(CLI::App& app) override {
    app.description(
        "Lists every session. STATUS is observed, never remembered: QEMU's own answer\n"
        "to query-status (running, paused, ...) when its process lives; stopped or\n"
        "crashed when it does not; unresponsive when its monitor does not answer;\n"
        "failed when spawn or resume could not boot it; corrupt when meta.json cannot\n"
        "be read. GUEST is the guest agent (QGA), AGENT the agent's tmux session:\n"
        "by default both come from QEMU alone, which reports whether the guest holds\n"
        "each one's virtio-serial port open (up/down; running, or exited once the agent\n"
        "closed its port); --deep asks the guest agent itself (a round trip the guest's\n"
        "vCPU must answer: slow with many idle TCG guests on few cores).\n"
        "TOKENS is what the model gateway counted so far (input+output), with the\n"
        "budget after a '/' when there is one.\n"
        "VMs are asked concurrently, each within --timeout, so one hung VM cannot\n"
        "stall the list. A session whose repo holds git config or hooks that would\n"
        "run a program (see agent-stop) gets a line saying so, and repo_traps in JSON.");
    app.add_flag("--json", json_, "Print a JSON array with the same facts");
    app.add_option("--timeout", timeout_ms_, "Milliseconds each VM gets to answer (default: 3000)");
    app.add_flag("-q,--quiet", quiet_, "Print only the ids");
    app.add_flag("--deep", deep_,
                 "Also ask the guest agent: it must answer guest-sync, and the agent's unit must\n"
                 "have a live process (GUEST: up or no answer). Slower: each guest must be\n"
                 "scheduled to answer");
    app.footer(
        "COLUMNS\n"
        "  ID  STATUS  GUEST  AGENT  SSH (port on 127.0.0.1)  TOKENS  REPO@REF  AGE\n"
        "\n"
        "EXAMPLES\n"
        "  agent-list\n"
        "  agent-list --json | jq -r '.[] | select(.status==\"running\") | .id'");
  }

  int run() override {
    auto store = open_store();
    auto all = sessions::list(store, std::chrono::milliseconds(timeout_ms_), deep_);
    if (json_) {
      boost::json::array a;
      for (const auto& s : all) a.push_back(to_json(s, traps_of(store, s)));
      print_json(std::cout, a);
      return 0;
    }
    if (quiet_) {
      for (const auto& s : all) std::cout << s.id << "\n";
      return 0;
    }
    if (all.empty()) {
      std::cout << "no sessions (create one with agent-spawn --repo URL)\n";
      return 0;
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& s : all) {
      std::string repo = s.repo.empty() ? "-" : s.repo + (s.ref.empty() ? "" : "@" + s.ref);
      std::string tokens = std::to_string(s.input_tokens + s.output_tokens);
      if (s.max_tokens) tokens += "/" + std::to_string(*s.max_tokens);
      rows.push_back({s.id, s.status, s.guest, s.agent, s.ssh_port ? std::to_string(s.ssh_port) : "-", tokens, repo,
                      human_duration(std::chrono::seconds(s.age_seconds))});
    }
    print_table(std::cout, {"ID", "STATUS", "GUEST", "AGENT", "SSH", "TOKENS", "REPO@REF", "AGE"}, rows, {4, 5, 7});
    for (const auto& s : all)
      if (!s.detail.empty() && sessions::detail_is_news(s.state))
        std::cout << "  " << s.id << ": " << s.detail << "\n";
    for (const auto& s : all) {
      auto traps = traps_of(store, s);
      if (traps.empty()) continue;
      std::cout << "  " << s.id << ": its repo would make git run programs (" << traps.front()
                << (traps.size() > 1 ? " and " + std::to_string(traps.size() - 1) + " more" : "")
                << "): never run git in its folder; use agent-vm diff/export\n";
    }
    return 0;
  }

 private:
  bool json_ = false, quiet_ = false, deep_ = false;
  unsigned timeout_ms_ = 3000;
};

}  // namespace

std::unique_ptr<Command> make_list() { return std::make_unique<List>(); }

}  // namespace avm::cmd
