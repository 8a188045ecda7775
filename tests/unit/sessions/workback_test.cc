#include "sessions/workback.h"

#include <sys/stat.h>

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <functional>
#include <map>
#include <set>

#include "helpers.h"
#include "sessions/clone.h"
#include "sessions/repo_files.h"
#include "sessions/workback_rules.h"
#include "util/error.h"
#include "util/file.h"
#include "util/process.h"
#include "util/temp_dir.h"
#include "util/timestamp.h"

using namespace avm::sessions;
using avm::test::git;
namespace fs = std::filesystem;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const avm::Error& e) {
    return std::string(e.what()) + " | " + e.hint();
  }
  return "no error";
}

bool has(const std::vector<Warning>& ws, const std::string& kind, const std::string& path) {
  for (const auto& w : ws)
    if (w.kind == kind && w.path == path) return true;
  return false;
}

std::string risky(const std::string& text) {
  auto entries = parse_git_config(text);
  REQUIRE(entries.size() == 1);
  return risky_config_key(entries[0]);
}

// Every file under `dir` (names, modes and bytes, symlinks as links) but
// those `skip` names, as one string: equal before and after means nothing
// else there changed.
std::string fingerprint(const fs::path& dir, const std::function<bool(const std::string&)>& skip = {}) {
  std::string out;
  std::vector<fs::path> all;
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator(); ++it)
    all.push_back(it->path());
  std::sort(all.begin(), all.end());
  for (const auto& p : all) {
    std::string rel = p.lexically_relative(dir).string();
    if (skip && skip(rel)) continue;
    struct stat st {};
    ::lstat(p.c_str(), &st);
    out += rel + " " + std::to_string(st.st_mode) + "\n";
    if (S_ISREG(st.st_mode)) out += avm::read_file(p) + "\n";
    if (S_ISLNK(st.st_mode)) out += fs::read_symlink(p).string() + "\n";
  }
  return out;
}

// The user's repository (with a checked-out branch, a staged and an
// unstaged change of its own) and a stopped session cloned from it, in which
// the "agent" committed, left changes, and planted traps whose commands
// would create files under `markers` if anything ran them.
struct Fixture {
  avm::TempDir tmp{"avm-workback"};
  fs::path user = tmp.path() / "user";
  fs::path markers = tmp.path() / "markers";
  SessionStore store{tmp.path() / "sessions"};
  std::string id = "wb1";
  std::string base;
  fs::path repo;

  std::string trap(const std::string& name) const { return "touch " + (markers / name).string(); }

  Fixture() {
    fs::create_directories(user);
    fs::create_directories(markers);
    git(user, {"init", "-q", "-b", "main"});
    avm::write_file_atomic(user / "README", "one\n");
    avm::write_file_atomic(user / "gone.txt", "to be deleted\n");
    avm::write_file_atomic(user / "script.sh", "echo hi\n");
    avm::write_file_atomic(user / "bin.dat", std::string("\0\1\2\3", 4));
    avm::write_file_atomic(user / ".gitignore", "*.log\n");
    git(user, {"add", "-A"});
    git(user, {"commit", "-q", "-m", "first"});
    base = git(user, {"rev-parse", "HEAD"});

    NewSession ns = store.create(id);
    CloneResult c = clone_repo(user.string(), "", ns.paths().repo());
    Meta m;
    m.id = id;
    m.repo_url = c.url;
    m.commit = c.commit;
    m.checked_out = c.checked_out;
    m.created = avm::utc_now_iso8601();
    m.image = "debian";
    m.accelerator = "tcg";
    m.intent = Intent::Stopped;
    ns.save(m);
    ns.commit();
    repo = store.paths(id).repo();

    // The agent's commit.
    avm::write_file_atomic(repo / "README", "one\ntwo\n");
    git(repo, {"commit", "-q", "-am", "agent: second line"});
    // Uncommitted, untracked, deleted, binary, mode change, ignored.
    avm::write_file_atomic(repo / "README", "one\ntwo\nthree\n");
    avm::write_file_atomic(repo / "new.txt", "untracked\n");
    fs::remove(repo / "gone.txt");
    avm::write_file_atomic(repo / "bin.dat", std::string("\0\1\2\4\5", 5));
    fs::permissions(repo / "script.sh", fs::perms::owner_exec, fs::perm_options::add);
    avm::write_file_atomic(repo / "debug.log", "ignored\n");
    // Traps: no git runs in this repo from here on until it is defused.
    std::string cfg = avm::read_file(repo / ".git" / "config");
    cfg += "[core]\n\tfsmonitor = " + trap("fsmonitor") + "\n\thooksPath = " + (markers / "hooks").string() +
           "\n\tpager = " + trap("pager") + "\n" + "[filter \"evil\"]\n\tclean = " + trap("clean") +
           "\n\tsmudge = " + trap("smudge") + "\n" + "[diff \"evil\"]\n\ttextconv = " + trap("textconv") + "\n" +
           "[alias]\n\tst = !" + trap("alias") + "\n\tco = checkout\n" + "[user]\n\tname = Agent\n";
    avm::write_file_atomic(repo / ".git" / "config", cfg);
    avm::write_file_atomic(repo / ".git" / "hooks" / "post-checkout", "#!/bin/sh\n" + trap("post-checkout") + "\n",
                           0755);
    avm::write_file_atomic(repo / ".gitattributes", "* filter=evil diff=evil\n");
    fs::create_directories(repo / ".github" / "workflows");
    avm::write_file_atomic(repo / ".github" / "workflows" / "ci.yml", "on: push\n");
  }

  bool any_marker() const { return !fs::is_empty(markers); }
};

}  // namespace

TEST_CASE("the config reader follows no include and reads git's syntax", "[workback]") {
  auto e = parse_git_config(
      "# comment\n[core]\n\tbare = false\n\tfsmonitor = \"touch /x\" ; trailing\n[include]\n\tpath = /etc/x\n"
      "[remote \"Origin\"]\n\turl = a\\\n b\n[core] editor = vi\n[alias.x]\nflag\n");
  REQUIRE(e.size() == 6);
  CHECK(e[0].key == "core.bare");
  CHECK(e[1].key == "core.fsmonitor");
  CHECK(e[1].value == "touch /x");
  CHECK(e[2].key == "include.path");
  CHECK(e[3].key == "remote.Origin.url");
  CHECK(e[3].value == "a b");
  CHECK(e[3].first_line == 7);
  CHECK(e[3].end_line == 9);
  CHECK(e[4].key == "core.editor");
  CHECK(e[4].key_column > 0);
  CHECK(e[5].key == "alias.x.flag");
  CHECK(e[5].value == "true");
  // A line it cannot read is an entry, so that it is reported and removed.
  auto bad = parse_git_config("[core]\n\tfsmonitor = \"open quote\n");
  REQUIRE(bad.size() == 1);
  CHECK(bad[0].key == "?");
  CHECK_FALSE(risky_config_key(bad[0]).empty());
}

TEST_CASE("config keys that name a program are risky, others are not", "[workback]") {
  for (const char* k :
       {"[core]\nfsmonitor = x", "[core]\nhooksPath = /h", "[core]\nsshCommand = x", "[core]\npager = x",
        "[core]\neditor = x", "[core]\naskPass = x", "[core]\ngitProxy = x", "[core]\nworktree = /home",
        "[filter \"a\"]\nclean = x", "[filter \"a\"]\nsmudge = x", "[filter \"a\"]\nprocess = x",
        "[diff \"a\"]\ntextconv = x", "[diff \"a\"]\ncommand = x", "[diff]\nexternal = x",
        "[merge \"a\"]\ndriver = x", "[credential]\nhelper = x", "[credential \"https://h\"]\nhelper = x",
        "[gpg]\nprogram = x", "[gpg \"ssh\"]\nprogram = x", "[sequence]\neditor = x", "[pager]\nlog = x",
        "[alias]\nx = !sh", "[alias]\nx =  !sh", "[include]\npath = x", "[includeIf \"gitdir:/\"]\npath = x",
        "[remote \"o\"]\nuploadpack = x", "[remote \"o\"]\nreceivepack = x", "[uploadpack]\npackObjectsHook = x",
        "[difftool \"a\"]\ncmd = x", "[mergetool \"a\"]\ncmd = x", "[hook \"a\"]\ncommand = x",
        "[submodule \"s\"]\nupdate = !x", "[sendemail]\nsmtpServer = /bin/x", "[core]\nalternateRefsCommand = x"}) {
    INFO(k);
    CHECK_FALSE(risky(k).empty());
  }
  for (const char* k : {"[core]\nfsmonitor = false", "[alias]\nco = checkout", "[user]\nname = x",
                        "[remote \"o\"]\nurl = x", "[core]\nbare = false", "[submodule \"s\"]\nupdate = rebase",
                        "[http]\nproxy = x", "[branch \"main\"]\nremote = origin"}) {
    INFO(k);
    CHECK(risky(k).empty());
  }
}

TEST_CASE("removing config entries keeps everything else", "[workback]") {
  std::string text = "[core]\n\tbare = false\n\tfsmonitor = x\\\ny\n[core] pager = less\n[user]\n\tname = A\n";
  std::vector<ConfigEntry> bad;
  for (auto& e : parse_git_config(text))
    if (!risky_config_key(e).empty()) bad.push_back(e);
  REQUIRE(bad.size() == 2);
  std::string out = strip_config_entries(text, bad);
  CHECK(out == "[core]\n\tbare = false\n[core] \n[user]\n\tname = A\n");
  for (auto& e : parse_git_config(out)) CHECK(risky_config_key(e).empty());
}

TEST_CASE("the classifier names every risky change", "[workback]") {
  auto mod = [](std::string p, std::uint32_t old_mode = 0100644, std::uint32_t new_mode = 0100644) {
    return ChangedPath{std::move(p), "", "modified", old_mode, new_mode, {}};
  };
  std::vector<ChangedPath> ch = {mod(".github/workflows/ci.yml"), mod(".gitlab-ci.yml"), mod(".circleci/config.yml"),
                                 mod("Jenkinsfile"), mod("sub/Jenkinsfile"), mod("azure-pipelines.yml"),
                                 mod(".travis.yml"), mod(".pre-commit-config.yaml"), mod(".husky/pre-commit"),
                                 mod(".gitmodules"), mod(".envrc"), mod("sub/.envrc"), mod(".vscode/tasks.json"),
                                 mod(".vscode/settings.json"), mod(".idea/workspace.xml"),
                                 mod(".idea/runConfigurations/x.xml"), mod(".devcontainer/devcontainer.json"),
                                 mod("run.sh", 0100644, 0100755), mod("new.sh", 0, 0100755), mod("src/a.c"),
                                 mod("Makefile")};
  ChangedPath attrs = mod(".gitattributes");
  attrs.gitattributes_text = "*.c filter=evil\n";
  ch.push_back(attrs);
  ChangedPath gone{".github/workflows/old.yml", "", "deleted", 0100644, 0, {}};
  ch.push_back(gone);
  auto cfg = parse_git_config("[core]\nfsmonitor = x\n[user]\nname = n\n");
  auto w = classify(ch, cfg, {"post-checkout", "pre-commit.sample", "pre-push"});
  CHECK(has(w, "ci", ".github/workflows/ci.yml"));
  CHECK(has(w, "ci", ".gitlab-ci.yml"));
  CHECK(has(w, "ci", ".circleci/config.yml"));
  CHECK(has(w, "ci", "Jenkinsfile"));
  CHECK(has(w, "ci", "sub/Jenkinsfile"));
  CHECK(has(w, "ci", "azure-pipelines.yml"));
  CHECK(has(w, "ci", ".travis.yml"));
  CHECK(has(w, "automation", ".pre-commit-config.yaml"));
  CHECK(has(w, "automation", ".husky/pre-commit"));
  CHECK(has(w, "git-attributes", ".gitattributes"));
  CHECK(has(w, "git-modules", ".gitmodules"));
  CHECK(has(w, "envrc", ".envrc"));
  CHECK(has(w, "envrc", "sub/.envrc"));
  CHECK(has(w, "editor-tasks", ".vscode/tasks.json"));
  CHECK(has(w, "editor-tasks", ".vscode/settings.json"));
  CHECK(has(w, "editor-tasks", ".idea/workspace.xml"));
  CHECK(has(w, "editor-tasks", ".idea/runConfigurations/x.xml"));
  CHECK(has(w, "devcontainer", ".devcontainer/devcontainer.json"));
  CHECK(has(w, "executable", "run.sh"));
  CHECK(has(w, "executable", "new.sh"));
  CHECK(has(w, "git-config", "core.fsmonitor"));
  CHECK(has(w, "git-hook", "hooks/post-checkout"));
  CHECK(has(w, "git-hook", "hooks/pre-push"));
  CHECK_FALSE(has(w, "git-hook", "hooks/pre-commit.sample"));
  CHECK_FALSE(has(w, "git-config", "user.name"));
  CHECK_FALSE(has(w, "ci", ".github/workflows/old.yml"));  // a deletion runs nothing
  for (const auto& x : w) CHECK(x.path != "src/a.c");
  for (const auto& x : w) CHECK(x.path != "Makefile");
  CHECK(w.size() == 23);
  for (const auto& x : w)
    if (x.path == ".gitattributes") CHECK(x.detail.find("filter") != std::string::npos);
}

TEST_CASE("diff reads commits, uncommitted, untracked, deleted, binary and mode changes", "[workback]") {
  Fixture f;
  WorkDiff d = diff(f.store, f.id);
  CHECK(d.base == f.base);
  CHECK_FALSE(d.running);
  REQUIRE(d.commits.size() == 1);
  CHECK(d.commits[0].subject == "agent: second line");
  CHECK(d.head == d.commits[0].sha);
  CHECK(d.head_name == "main");
  CHECK(d.uncommitted);
  std::map<std::string, FileChange> by;
  for (const auto& x : d.files) by[x.path] = x;
  CHECK(by.size() == 7);  // README, new.txt, gone.txt, bin.dat, script.sh, .gitattributes, ci.yml
  CHECK(by["README"].status == "modified");
  CHECK(by["README"].added == 2);
  CHECK(by["README"].removed == 0);
  CHECK(by["new.txt"].status == "added");
  CHECK(by["gone.txt"].status == "deleted");
  CHECK(by["gone.txt"].removed == 1);
  CHECK(by["bin.dat"].binary);
  CHECK(by["script.sh"].old_mode == 0100644);
  CHECK(by["script.sh"].new_mode == 0100755);
  CHECK(by.count("debug.log") == 0);  // ignored
  CHECK(d.patch.find("+three") != std::string::npos);
  CHECK(d.patch.find("diff --git a/README b/README") != std::string::npos);
  CHECK(has(d.warnings, "executable", "script.sh"));
  CHECK(has(d.warnings, "ci", ".github/workflows/ci.yml"));
  CHECK(has(d.warnings, "git-attributes", ".gitattributes"));
  // The session was stopped: its repo was defused first, and says so.
  CHECK(has(d.warnings, "defused", "core.fsmonitor"));
  CHECK(has(d.warnings, "defused", "hooks/post-checkout"));
  CHECK_FALSE(f.any_marker());
}

TEST_CASE("diff --json lists the same facts", "[workback]") {
  Fixture f;
  auto r = avm::run({AGENT_VM_TEST_BIN, "diff", "--json", f.id},
                    {.env = {"AGENT_VM_SESSIONS=" + f.store.root().string()}, .timeout = std::chrono::seconds(60)});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto j = boost::json::parse(r.out).as_object();
  CHECK(j["base"].as_string() == f.base);
  CHECK(j["uncommitted"].as_bool());
  CHECK(j["commits"].as_array().size() == 1);
  std::map<std::string, boost::json::object> by;
  for (auto& x : j["files"].as_array()) by[std::string(x.as_object().at("path").as_string())] = x.as_object();
  CHECK(by["new.txt"]["status"].as_string() == "added");
  CHECK(by["gone.txt"]["status"].as_string() == "deleted");
  CHECK(by["bin.dat"]["binary"].as_bool());
  CHECK(by["README"]["added"].as_int64() == 2);
  CHECK(by["script.sh"]["new_mode"].as_string() == "100755");
  CHECK_FALSE(j["warnings"].as_array().empty());
  CHECK_FALSE(f.any_marker());
}

TEST_CASE("defuse removes program-naming keys and hooks and keeps a copy", "[workback]") {
  Fixture f;
  std::string before = avm::read_file(f.repo / ".git" / "config");
  auto traps = repo_traps(f.store.paths(f.id));
  CHECK(has(traps, "git-config", "core.fsmonitor"));
  CHECK(has(traps, "git-hook", "hooks/post-checkout"));
  DefuseReport r = defuse(f.store.paths(f.id), f.store.load(f.id));
  std::set<std::string> removed(r.removed.begin(), r.removed.end());
  for (const char* k : {"core.fsmonitor", "core.hookspath", "core.pager", "filter.evil.clean", "filter.evil.smudge",
                        "diff.evil.textconv", "alias.st", "hooks/post-checkout"}) {
    INFO(k);
    CHECK(removed.count(k));
  }
  CHECK(removed.size() == 8);
  CHECK(r.kept.parent_path().parent_path() == f.store.paths(f.id).host);
  CHECK(avm::read_file(r.kept / "config") == before);
  CHECK(fs::exists(r.kept / "hooks" / "post-checkout"));
  CHECK_FALSE(fs::exists(f.repo / ".git" / "hooks" / "post-checkout"));
  std::string after = avm::read_file(f.repo / ".git" / "config");
  CHECK(after.find("fsmonitor") == std::string::npos);
  CHECK(after.find("co = checkout") != std::string::npos);
  CHECK(after.find("name = Agent") != std::string::npos);
  CHECK(repo_traps(f.store.paths(f.id)).empty());
  // Now plain git in the session repo runs none of them.
  git(f.repo, {"status"});
  git(f.repo, {"diff"});
  git(f.repo, {"log", "-p"});
  CHECK_FALSE(f.any_marker());
  // A second run finds nothing more.
  CHECK(defuse(f.store.paths(f.id), f.store.load(f.id)).removed.empty());
}

TEST_CASE("export writes only a branch and leaves the user's repository as it was", "[workback]") {
  Fixture f;
  // The user's own state: a staged and an unstaged change.
  avm::write_file_atomic(f.user / "README", "mine\n");
  git(f.user, {"add", "README"});
  avm::write_file_atomic(f.user / "script.sh", "mine too\n");
  std::string before = fingerprint(f.user, [](const std::string& rel) { return rel.rfind(".git/objects", 0) == 0; });
  std::string head_before = git(f.user, {"rev-parse", "HEAD"});

  ExportResult r = export_work(f.store, f.id, {});
  CHECK(r.branch == "agent/wb1");
  CHECK(r.repo == fs::canonical(f.user));
  CHECK(r.commits == 1);
  CHECK(r.uncommitted_commit);
  CHECK(r.identity == "agent-vm session wb1 <agent@wb1.agent-vm>");
  CHECK(r.base == f.base);
  CHECK_FALSE(r.replaced);
  // Nothing changed but the new ref, its reflog and objects.
  auto new_things = [](const std::string& rel) {
    return rel.rfind(".git/objects", 0) == 0 || rel.rfind(".git/refs/heads/agent", 0) == 0 ||
           rel.rfind(".git/logs/refs/heads/agent", 0) == 0;
  };
  CHECK(fingerprint(f.user, new_things) == before);
  CHECK(git(f.user, {"rev-parse", "HEAD"}) == head_before);
  CHECK(git(f.user, {"branch", "--show-current"}) == "main");
  CHECK(git(f.user, {"status", "--porcelain"}) == "M  README\n M script.sh");
  // The branch holds the agent's work.
  CHECK(git(f.user, {"rev-parse", "agent/wb1"}) == r.tip);
  CHECK(git(f.user, {"log", "--format=%s", "main..agent/wb1"}) ==
        "Uncommitted work of agent-vm session wb1\nagent: second line");
  CHECK(git(f.user, {"show", "agent/wb1:README"}) == "one\ntwo\nthree");
  CHECK(git(f.user, {"show", "agent/wb1:new.txt"}) == "untracked");
  CHECK(git(f.user, {"ls-tree", "agent/wb1", "script.sh"}).rfind("100755", 0) == 0);
  CHECK(git(f.user, {"ls-tree", "--name-only", "agent/wb1"}).find("gone.txt") == std::string::npos);
  CHECK(git(f.user, {"ls-tree", "--name-only", "agent/wb1"}).find("debug.log") == std::string::npos);
  CHECK(git(f.user, {"fsck", "--no-dangling"}).empty());
  CHECK(git(f.user, {"reflog", "show", "agent/wb1"}).find("agent-vm export wb1") != std::string::npos);

  // A second export is refused, and leaves the branch as it was.
  CHECK(error_of([&] { export_work(f.store, f.id, {}); }).find("already exists") != std::string::npos);
  CHECK(git(f.user, {"rev-parse", "agent/wb1"}) == r.tip);
  // With --force it is replaced.
  avm::write_file_atomic(f.repo / "more.txt", "more\n");
  ExportOptions force;
  force.force = true;
  ExportResult r2 = export_work(f.store, f.id, force);
  CHECK(r2.replaced == r.tip);
  CHECK(git(f.user, {"rev-parse", "agent/wb1"}) == r2.tip);
  CHECK(git(f.user, {"show", "agent/wb1:more.txt"}) == "more");
  CHECK(git(f.user, {"rev-parse", "HEAD"}) == head_before);
  // The checked-out branch is never replaced; bad names are refused.
  ExportOptions onto_main = force;
  onto_main.branch = "main";
  CHECK(error_of([&] { export_work(f.store, f.id, onto_main); }).find("checked out") != std::string::npos);
  ExportOptions bad;
  bad.branch = "a..b";
  CHECK(error_of([&] { export_work(f.store, f.id, bad); }).find("not a valid branch name") != std::string::npos);
  CHECK_FALSE(f.any_marker());
}

TEST_CASE("export refuses a remote source without --to, and a target inside the sessions folder", "[workback]") {
  Fixture f;
  Meta m = f.store.load(f.id);
  m.repo_url = "https://example.invalid/r.git";
  {
    SessionLock l = f.store.lock(f.id);
    f.store.save(l, m);
  }
  CHECK(error_of([&] { export_work(f.store, f.id, {}); }).find("--to PATH") != std::string::npos);
  ExportOptions into_session;
  into_session.to = f.repo;
  CHECK(error_of([&] { export_work(f.store, f.id, into_session); }).find("inside the sessions folder") !=
        std::string::npos);
  ExportOptions to_user;
  to_user.to = f.user;
  CHECK(export_work(f.store, f.id, to_user).branch == "agent/wb1");
}

TEST_CASE("push writes the branch to the session's origin", "[workback]") {
  Fixture f;
  // A local origin with a work tree takes the work with export instead.
  CHECK(error_of([&] { push_work(f.store, f.id, {}); }).find("use agent-vm export wb1") != std::string::npos);
  avm::TempDir t;
  fs::path bare = t.path() / "origin.git";
  git(t.path(), {"clone", "-q", "--bare", f.user.string(), bare.string()});
  Meta m = f.store.load(f.id);
  m.repo_url = "file://" + bare.string();
  {
    SessionLock l = f.store.lock(f.id);
    f.store.save(l, m);
  }
  PushResult r = push_work(f.store, f.id, {});
  CHECK(git(bare, {"rev-parse", "agent/wb1"}) == r.tip);
  CHECK(git(bare, {"show", "agent/wb1:new.txt"}) == "untracked");
  CHECK(git(bare, {"fsck", "--no-dangling"}).empty());
  // Again with other work: refused without --force, replaced with it.
  avm::write_file_atomic(f.repo / "more.txt", "more\n");
  CHECK(error_of([&] { push_work(f.store, f.id, {}); }) != "no error");
  PushOptions force;
  force.force = true;
  PushResult r2 = push_work(f.store, f.id, force);
  CHECK(git(bare, {"rev-parse", "agent/wb1"}) == r2.tip);
  CHECK_FALSE(f.any_marker());
}
