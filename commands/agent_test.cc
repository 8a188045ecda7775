// agent-test: the product's job end to end on a throwaway repository. The
// real agent is spawned with a prompt asking for one file, the file must
// appear in the host's clone with the asked content; the session is stopped,
// resumed with a follow-up asking for a second file, which must appear too.
#include <git2.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <optional>
#include <sstream>
#include <thread>

#include "commands/command.h"
#include "commands/common.h"
#include "commands/render.h"
#include "sessions/ids.h"
#include "util/error.h"
#include "util/file.h"
#include "util/process.h"
#include "util/progress.h"
#include "util/temp_dir.h"

namespace avm::cmd {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// What the agent is asked for. The scripted model server's agent-test script
// (tests/model_server/agent_test.json) answers these prompts with these files.
struct Ask {
  std::string file, content, prompt;
};
Ask first_ask() {
  Ask a{"agent-test-1.txt", "agent-vm test: first file", {}};
  a.prompt = "Create a file named " + a.file + " in the repository's top folder containing exactly this line: " +
             a.content + "\nDo not change anything else, and do not ask questions.";
  return a;
}
Ask second_ask() {
  Ask a{"agent-test-2.txt", "agent-vm test: second file", {}};
  a.prompt = "Now create a file named " + a.file + " in the repository's top folder containing exactly this line: " +
             a.content + "\nDo not change anything else, and do not ask questions.";
  return a;
}

// A file's content counts as the asked one with or without a final newline.
bool content_matches(std::string seen, const std::string& want) {
  if (!seen.empty() && seen.back() == '\n') seen.pop_back();
  if (!seen.empty() && seen.back() == '\r') seen.pop_back();
  return seen == want;
}

void git_check(int rc, const char* what) {
  if (rc >= 0) return;
  const git_error* e = git_error_last();
  throw Error(std::string("making the test repository: ") + what + ": " + (e && e->message ? e->message : "failed"));
}

// A repository with one commit (README) on main, made with libgit2.
void make_repo(const fs::path& dir) {
  git_libgit2_init();
  struct Shutdown {
    ~Shutdown() { git_libgit2_shutdown(); }
  } shutdown;
  git_repository_init_options opts = GIT_REPOSITORY_INIT_OPTIONS_INIT;
  opts.flags = GIT_REPOSITORY_INIT_MKPATH;
  opts.initial_head = "main";
  git_repository* repo = nullptr;
  git_check(git_repository_init_ext(&repo, dir.c_str(), &opts), "init");
  std::unique_ptr<git_repository, void (*)(git_repository*)> repo_owner(repo, git_repository_free);
  const std::string readme = "A throwaway repository made by agent-test.\n";
  write_file_atomic(dir / "README", readme);
  git_index* index = nullptr;
  git_check(git_repository_index(&index, repo), "index");
  std::unique_ptr<git_index, void (*)(git_index*)> index_owner(index, git_index_free);
  git_check(git_index_add_bypath(index, "README"), "add README");
  git_check(git_index_write(index), "write index");
  git_oid tree_id, commit_id;
  git_check(git_index_write_tree(&tree_id, index), "write tree");
  git_tree* tree = nullptr;
  git_check(git_tree_lookup(&tree, repo, &tree_id), "tree");
  std::unique_ptr<git_tree, void (*)(git_tree*)> tree_owner(tree, git_tree_free);
  git_signature* sig = nullptr;
  git_check(git_signature_now(&sig, "agent-test", "agent-test@localhost"), "signature");
  std::unique_ptr<git_signature, void (*)(git_signature*)> sig_owner(sig, git_signature_free);
  git_check(git_commit_create_v(&commit_id, repo, "HEAD", sig, sig, nullptr, "README", tree, 0), "commit");
}

struct Step {
  std::string name;
  bool ok = false;
  double at = 0;    // seconds since the start, when it ended
  double took = 0;  // seconds it took
  std::string detail;
};

class AgentTest final : public Command {
 public:
  std::string name() const override { return "test"; }
  std::string summary() const override { return "Check that the agent works: two edits, across a stop and a resume"; }

  void configure(CLI::App& app) override {
    app.description(
        "Runs the real agent on a throwaway local repository and checks that it does\n"
        "the work: a session is spawned with a prompt asking for one file with given\n"
        "content, which must appear in the session's repository on the host; the\n"
        "session is stopped and resumed with a follow-up (agent-resume --prompt) asking\n"
        "for a second file, which must appear too. Then the session and the repository\n"
        "are removed. Each step is printed with its time.\n"
        "\n"
        "It uses the model the agent would use: with your ANTHROPIC_API_KEY it is a\n"
        "smoke test of the whole product; with ANTHROPIC_BASE_URL at a scripted model\n"
        "server on 127.0.0.1 (tests/model_server) it is a deterministic test.");
    app.add_option("--timeout", timeout_s_,
                   "Seconds to wait for each file once its VM is up (default: 900)")
        ->type_name("SECONDS");
    app.add_option("--image", image_, "Guest image (default: default)")->type_name("IMAGE");
    app.add_flag("--keep", keep_, "Leave the session and the repository for inspection");
    app.add_flag("--keep-running", keep_running_,
                 "As --keep, and leave the session running after the second file (no last stop), to "
                 "attach to it or give it more to do");
    app.add_flag("--json", json_, "Print the steps as JSON");
    app.footer(
        "EXAMPLES\n"
        "  agent-test\n"
        "  ANTHROPIC_BASE_URL=http://127.0.0.1:8123/v1 agent-test --timeout 600 --json\n"
        "  agent-test --keep-running      then agent-attach ID shows the agent's screen\n"
        "\n"
        "EXIT STATUS\n"
        "  0 when the agent wrote both files with the asked content; 1 otherwise.");
  }

  int run() override {
    if (timeout_s_ == 0) throw Error("--timeout must be positive", "give seconds, e.g. --timeout 900");
    start_ = Clock::now();
    Progress progress(json_);
    auto store = open_store();
    std::optional<TempDir> tmp;
    std::string id;
    bool ok = step("repository", [&] {
      tmp.emplace("agent-test");
      make_repo(tmp->path() / "repo");
      return (tmp->path() / "repo").string();
    });
    const Ask one = first_ask(), two = second_ask();
    ok = ok && step("spawn", [&] {
      sessions::SpawnRequest req;
      req.repo = (tmp->path() / "repo").string();
      req.prompt = one.prompt;
      // Chosen here, so a spawn that fails after creating the session still
      // leaves an id to remove.
      req.id = sessions::generate_id();
      id = *req.id;
      req.start = start_options();
      // The model API the agent would use: the user's own, or the scripted server.
      if (const char* url = std::getenv("ANTHROPIC_BASE_URL"); url && *url) req.upstream = url;
      auto r = sessions::spawn(store, req, progress);
      id = r.id;
      return "session " + r.id;
    });
    ok = ok && step("first file", [&] { return wait_file(store, id, one, progress); });
    ok = ok && step("stop", [&] { return stop(store, id, progress); });
    ok = ok && step("resume", [&] {
      auto opts = start_options();
      opts.followup = two.prompt;  // as agent-resume --prompt
      sessions::resume(store, id, opts, progress);
      return std::string("with a follow-up");
    });
    ok = ok && step("second file", [&] { return wait_file(store, id, two, progress); });
    if (!keep_running_) ok = ok && step("stop", [&] { return stop(store, id, progress); });
    if (keep_ || keep_running_) {
      if (tmp) note("kept: session " + (id.empty() ? std::string("(none)") : id) + ", repository " +
                    tmp->release().string());
    } else if (!id.empty() && fs::exists(store.paths(id).dir)) {
      // Whatever happened above, nothing stays behind.
      bool removed = step("remove", [&] {
        sessions::remove(store, id, /*force=*/true, progress);
        return "session " + id;
      });
      ok = ok && removed;
    }
    if (json_) {
      boost::json::object o;
      o["ok"] = ok;
      o["id"] = id;
      boost::json::array a;
      for (const auto& s : steps_) {
        boost::json::object so;
        so["step"] = s.name;
        so["ok"] = s.ok;
        // Whole milliseconds: a double would print as 1.5526E3.
        so["at_ms"] = static_cast<std::int64_t>(std::llround(s.at * 1000));
        so["took_ms"] = static_cast<std::int64_t>(std::llround(s.took * 1000));
        so["detail"] = s.detail;
        a.push_back(std::move(so));
      }
      o["steps"] = std::move(a);
      print_json(std::cout, o);
    } else {
      std::cout << (ok ? "PASS" : "FAIL") << ": agent-test in " << fmt_seconds(elapsed()) << "\n";
    }
    return ok ? 0 : 1;
  }

 private:
  double elapsed() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }
  static std::string fmt_seconds(double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1fs", s);
    return buf;
  }

  void note(const std::string& line) {
    if (!json_) std::cout << line << "\n" << std::flush;
  }

  // Runs one step, records and prints it. False when it threw.
  bool step(const std::string& name, const std::function<std::string()>& fn) {
    Step s;
    s.name = name;
    double began = elapsed();
    try {
      s.detail = fn();
      s.ok = true;
    } catch (const Error& e) {
      s.detail = e.what();
      if (!e.hint().empty()) s.detail += " (" + e.hint() + ")";
    } catch (const std::exception& e) {
      s.detail = e.what();
    }
    s.at = elapsed();
    s.took = s.at - began;
    std::ostringstream line;
    line << "[" << fmt_seconds(s.at) << "] " << name << ": " << (s.ok ? "ok" : "FAILED") << " in "
         << fmt_seconds(s.took) << (s.detail.empty() ? "" : " - ") << s.detail;
    note(line.str());
    steps_.push_back(std::move(s));
    return steps_.back().ok;
  }

  sessions::StartOptions start_options() const {
    sessions::StartOptions o;
    if (!image_.empty()) o.image = image_;
    // A boot gets at least spawn's own allowance, whatever --timeout says.
    o.boot_timeout = std::max<std::chrono::milliseconds>(sessions::kDefaultBootTimeout,
                                                         std::chrono::seconds(timeout_s_));
    return o;
  }

  std::string stop(const sessions::SessionStore& store, const std::string& id, Progress& progress) {
    launcher::StopPolicy policy;
    auto r = sessions::stop(store, id, policy, progress);
    return r.method.empty() ? std::string("was not running") : "by " + r.method;
  }

  // Polls the host's clone for the file (every 0.5 s, up to --timeout), and
  // checks that the VM still runs while waiting.
  std::string wait_file(const sessions::SessionStore& store, const std::string& id, const Ask& ask,
                        Progress& progress) {
    const fs::path path = store.paths(id).repo() / ask.file;
    const auto began = Clock::now();
    const auto deadline = began + std::chrono::seconds(timeout_s_);
    auto vm = sessions::log_target(store, id);
    progress.stage("waiting for " + ask.file);
    std::optional<std::string> seen;
    for (;;) {
      seen = read_file_if_exists(path);
      if (seen && content_matches(*seen, ask.content)) {
        progress.done();
        return ask.file + " has the asked content";
      }
      if (!vm.pid || !proc_alive(static_cast<pid_t>(*vm.pid)))
        throw Error("the VM of session " + id + " exited before the agent wrote " + ask.file,
                    "see agent-logs " + id + " (run agent-test with --keep to keep the session)");
      if (Clock::now() >= deadline) break;
      const auto waited = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - began).count();
      progress.update(std::to_string(waited) + "s");
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    progress.done("timed out");
    if (seen)
      throw Error(ask.file + " does not hold the asked content after " + std::to_string(timeout_s_) +
                      "s; it holds: " + seen->substr(0, 200),
                  "attach with agent-test --keep and agent-attach to see what the agent did");
    throw Error("the agent did not write " + ask.file + " within " + std::to_string(timeout_s_) + "s",
                "give it longer with --timeout, or keep the session with --keep and look with agent-attach " + id);
  }

  unsigned timeout_s_ = 900;
  std::string image_;
  bool keep_ = false, keep_running_ = false, json_ = false;
  Clock::time_point start_;
  std::vector<Step> steps_;
};

}  // namespace

std::unique_ptr<Command> make_agent_test() { return std::make_unique<AgentTest>(); }

}  // namespace avm::cmd
