// Cloning over the network from a real `git daemon` on 127.0.0.1, and the
// store's promise around it: a session folder appears only when complete,
// and a failed clone leaves none behind.
#include <catch2/catch.hpp>
#include <functional>

#include "helpers.h"
#include "sessions/clone.h"
#include "sessions/keys.h"
#include "sessions/store.h"
#include "util/error.h"
#include "util/file.h"
#include "util/temp_dir.h"
#include "util/timestamp.h"

using namespace avm::sessions;
using avm::test::GitDaemon;
using avm::test::git;
using avm::test::TestRepo;
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

}  // namespace

TEST_CASE("clone over git:// checks out the default branch, with progress", "[git-daemon]") {
  TestRepo origin;
  GitDaemon daemon(origin.path.parent_path());
  avm::TempDir tmp;
  std::vector<CloneProgress> seen;
  CloneResult r = clone_repo(daemon.url("origin"), "", tmp.path() / "r",
                             [&](const CloneProgress& p) { seen.push_back(p); });
  CHECK(r.url == daemon.url("origin"));
  CHECK(r.checked_out == "main");
  CHECK(r.commit == origin.c3);
  CHECK(git(tmp.path() / "r", {"rev-parse", "HEAD"}) == origin.c3);
  CHECK(git(tmp.path() / "r", {"status", "--porcelain"}).empty());
  CHECK(git(tmp.path() / "r", {"remote", "get-url", "origin"}) == daemon.url("origin"));
  // The objects came over the wire and were counted.
  bool received = false;
  for (auto& p : seen)
    received |= p.phase != CloneProgress::Phase::CheckingOut && p.total_objects > 0 &&
                p.received_objects == p.total_objects && p.received_bytes > 0;
  CHECK(received);
}

TEST_CASE("clone over git:// takes a branch, a tag and an abbreviated commit", "[git-daemon]") {
  TestRepo origin;
  GitDaemon daemon(origin.path.parent_path());
  avm::TempDir tmp;
  CloneResult b = clone_repo(daemon.url("origin"), "dev", tmp.path() / "b");
  CHECK(b.commit == origin.c2);
  CHECK(git(tmp.path() / "b", {"branch", "--show-current"}) == "dev");
  CloneResult t = clone_repo(daemon.url("origin"), "v1-annotated", tmp.path() / "t");
  CHECK(t.commit == origin.c1);
  CHECK(t.detached);
  CloneResult c = clone_repo(daemon.url("origin"), origin.c4.substr(0, 10), tmp.path() / "c");
  CHECK(c.commit == origin.c4);
  CHECK(git(tmp.path() / "c", {"rev-parse", "HEAD"}) == origin.c4);
}

TEST_CASE("errors over git:// name what is wrong and leave nothing", "[git-daemon]") {
  TestRepo origin;
  GitDaemon daemon(origin.path.parent_path());
  avm::TempDir tmp;
  fs::path dest = tmp.path() / "r";
  std::string err = error_of([&] { clone_repo(daemon.url("nope.git"), "", dest); });
  INFO(err);
  CHECK(err.find("no git repository at " + daemon.url("nope.git")) != std::string::npos);
  CHECK_FALSE(fs::exists(dest));
  err = error_of([&] { clone_repo(daemon.url("origin"), "no-such-branch", dest); });
  CHECK(err.find("no branch, tag or commit 'no-such-branch' in " + daemon.url("origin")) != std::string::npos);
  CHECK(err.find("main, dev, feature/x") != std::string::npos);
  CHECK_FALSE(fs::exists(dest));
}

TEST_CASE("a clone cancelled mid-transfer leaves nothing", "[git-daemon]") {
  TestRepo origin;
  GitDaemon daemon(origin.path.parent_path());
  avm::TempDir tmp;
  std::atomic<bool> cancel{false};
  CloneOptions o;
  o.cancel = &cancel;
  int calls = 0;
  o.progress = [&](const CloneProgress&) {
    ++calls;
    cancel = true;  // as a SIGINT handler would
  };
  fs::path dest = tmp.path() / "r";
  std::string err = error_of([&] { clone_repo(daemon.url("origin"), dest, o); });
  CHECK(calls >= 1);
  CHECK(err.find("cancelled") != std::string::npos);
  CHECK_FALSE(fs::exists(dest));
}

TEST_CASE("a spawn's session folder appears complete, or not at all", "[git-daemon]") {
  TestRepo origin;
  GitDaemon daemon(origin.path.parent_path());
  avm::TempDir tmp;
  SessionStore store(tmp.path() / "sessions");

  SECTION("a failed clone leaves no session behind") {
    {
      NewSession ns = store.create();
      generate_session_keys(ns.paths().ssh(), "agent-vm session " + ns.id());
      CHECK_THROWS_AS(clone_repo(daemon.url("origin"), "missing", ns.paths().repo()), avm::Error);
    }
    CHECK(store.list().empty());
    std::vector<std::string> left;
    for (auto& e : fs::directory_iterator(store.root()))
      if (e.path().filename() != ".locks") left.push_back(e.path().filename().string());
    CHECK(left.empty());
  }

  SECTION("a good one is listed with what was checked out") {
    std::string id;
    {
      NewSession ns = store.create();
      id = ns.id();
      generate_session_keys(ns.paths().ssh(), "agent-vm session " + id);
      CloneResult r = clone_repo(daemon.url("origin"), "dev", ns.paths().repo());
      Meta m;
      m.id = id;
      m.repo_url = r.url;
      m.ref = "dev";
      m.checked_out = r.checked_out;
      m.commit = r.commit;
      m.created = avm::utc_now_iso8601();
      ns.save(m);
      ns.commit();
    }
    auto all = store.list();
    REQUIRE(all.size() == 1);
    REQUIRE(all[0].meta.has_value());
    CHECK(all[0].meta->commit == origin.c2);
    CHECK(git(store.paths(id).repo(), {"rev-parse", "HEAD"}) == origin.c2);
    CHECK(fs::exists(KeyFiles(store.paths(id).ssh()).host_key));
  }
}
