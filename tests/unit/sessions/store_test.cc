#include "sessions/store.h"

#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fcntl.h>
#include <functional>
#include <map>
#include <set>

#include "sessions/ids.h"
#include "util/error.h"
#include "util/file.h"
#include "util/process.h"
#include "util/temp_dir.h"
#include "util/timestamp.h"

using namespace avm::sessions;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

Meta meta_for(const std::string& id) {
  Meta m;
  m.id = id;
  m.repo_url = "/src/repo";
  m.created = "2026-01-02T03:04:05Z";  // fixed: two calls must build equal metas
  m.image = "debian";
  m.accelerator = "tcg";
  m.cpus = 2;
  m.memory_mib = 1024;
  m.intent = Intent::Stopped;
  return m;
}

// A committed session with a valid meta.json.
std::string make_session(const SessionStore& store, std::optional<std::string> id = std::nullopt) {
  NewSession ns = store.create(id);
  ns.save(meta_for(ns.id()));
  ns.commit();
  return ns.id();
}

mode_t mode_of(const fs::path& p) {
  struct stat st {};
  REQUIRE(::lstat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> out;
  for (auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const avm::Error& e) {
    return std::string(e.what()) + " | " + e.hint();
  }
  return "no error";
}

}  // namespace

TEST_CASE("a new session appears whole, private, and locked", "[store]") {
  avm::TempDir tmp;
  SessionStore store(tmp.path() / "sessions");
  NewSession ns = store.create();
  std::string id = ns.id();
  CHECK(is_valid_id(id));
  // Built aside under a dot name that list() ignores.
  CHECK(ns.dir().filename().string().rfind(".creating-" + id + "-", 0) == 0);
  CHECK(store.list().empty());
  CHECK_FALSE(store.exists(id));
  for (auto sub : {ns.paths().opencode(), ns.paths().ssh(), ns.paths().run()}) CHECK(mode_of(sub) == 0700);
  CHECK(mode_of(ns.dir()) == 0700);

  const Meta meta = meta_for(id);
  ns.save(meta);
  SessionLock lock = ns.commit();
  CHECK(ns.dir() == store.dir(id));
  CHECK(store.exists(id));
  CHECK(mode_of(store.dir(id)) == 0700);
  CHECK(mode_of(store.paths(id).meta()) == 0600);
  CHECK(store.load(id) == meta);
  // Only the session, its host-only folder and the lock folder remain.
  CHECK(names_in(store.root()) == std::vector<std::string>{".host", ".locks", id});
  CHECK(names_in(store.root() / ".host") == std::vector<std::string>{id});
  CHECK(mode_of(store.host_dir(id)) == 0700);
  CHECK(store.paths(id).host == store.host_dir(id));
  // Still ours: nobody else gets the lock until we let go.
  CHECK(lock.held());
  CHECK_FALSE(SessionLock::try_acquire(store.lock_path(id), id).has_value());
  lock.release();
  CHECK(store.lock(id, 1s).held());
}

TEST_CASE("a session never committed leaves nothing behind", "[store]") {
  avm::TempDir tmp;
  SessionStore store(tmp.path());
  std::string id;
  {
    NewSession ns = store.create();
    id = ns.id();
    avm::write_file_atomic(ns.paths().prompt(), "hello");
    fs::create_directories(ns.paths().repo() / "deep" / "er");
  }
  CHECK(names_in(tmp.path()) == std::vector<std::string>{".locks"});
  CHECK(names_in(tmp.path() / ".locks").empty());
  {
    NewSession ns = store.create();
    // Without meta.json it is not complete, and commit refuses.
    CHECK_THROWS_AS(ns.commit(), MetaCorrupt);
  }
  CHECK(names_in(tmp.path()) == std::vector<std::string>{".locks"});
}

TEST_CASE("create refuses a taken or busy id", "[store]") {
  avm::TempDir tmp;
  SessionStore store(tmp.path());
  make_session(store, "mine");
  CHECK(error_of([&] { store.create("mine"); }).find("session mine already exists") != std::string::npos);
  NewSession busy = store.create("other");
  CHECK(error_of([&] { store.create("other"); }).find("session other is busy") != std::string::npos);
  CHECK_THROWS_WITH(store.create("../evil"), Catch::Contains("path separator"));
  // A warm-pool VM waiting under an id holds it.
  fs::create_directories(tmp.path() / ".pool" / "pooled");
  CHECK(error_of([&] { store.create("pooled"); }).find("session pooled already exists") != std::string::npos);
}

TEST_CASE("commit_into moves a new session onto a live folder, keeping its run/", "[store]") {
  avm::TempDir tmp;
  SessionStore store(tmp.path());
  fs::path live = tmp.path() / ".pool" / ".taken-warm1";
  fs::create_directories(live / "run");
  fs::create_directories(live / "ssh");
  avm::write_file_atomic(live / "run" / "qmp.sock", "live", 0600);
  avm::write_file_atomic(live / "pool-slot", "marker", 0600);
  SessionLock lock = [&] {
    NewSession ns = store.create("warm1");
    ns.save(meta_for("warm1"));
    avm::write_file_atomic(ns.paths().ssh() / "id_ed25519", "key", 0600);
    avm::write_file_atomic(ns.paths().prompt(), "do it", 0600);
    return ns.commit_into(live);
  }();
  CHECK(lock.held());
  CHECK_FALSE(fs::exists(live));
  fs::path d = tmp.path() / "warm1";
  CHECK(avm::read_file(d / "run" / "qmp.sock") == "live");
  CHECK(avm::read_file(d / "ssh" / "id_ed25519") == "key");
  CHECK(avm::read_file(d / "prompt.txt") == "do it");
  CHECK(store.load("warm1").id == "warm1");
  // Only the session's folder and the pool's: nothing was left aside.
  CHECK(names_in(tmp.path()) == std::vector<std::string>{".host", ".locks", ".pool", "warm1"});
}

TEST_CASE("move_into makes a live folder an existing session's, keeping the live run/", "[store]") {
  avm::TempDir tmp;
  SessionStore store(tmp.path());
  std::string id = make_session(store, "s3ss10");
  fs::path d = tmp.path() / id;
  avm::write_file_atomic(d / "ssh" / "id_ed25519", "key", 0600);
  avm::write_file_atomic(d / "run" / "console.log", "old boot", 0600);
  fs::path live = tmp.path() / ".pool" / ".taken-warm1";
  fs::create_directories(live / "run");
  fs::create_directories(live / "ssh");
  avm::write_file_atomic(live / "run" / "qmp.sock", "live", 0600);
  SessionLock lock = store.lock(id);
  // The live folder's inode is what QEMU exports: it must be the one in place.
  struct stat before {};
  REQUIRE(::stat(live.c_str(), &before) == 0);
  store.move_into(lock, live);
  struct stat after {};
  REQUIRE(::stat(d.c_str(), &after) == 0);
  CHECK(after.st_ino == before.st_ino);
  CHECK_FALSE(fs::exists(live));
  CHECK(avm::read_file(d / "run" / "qmp.sock") == "live");
  CHECK(avm::read_file(d / "run" / "console.log.1") == "old boot");
  CHECK(avm::read_file(d / "ssh" / "id_ed25519") == "key");
  CHECK(store.load(id).id == id);
  CHECK(mode_of(d) == 0700);
  // Nothing left aside.
  CHECK(names_in(tmp.path()) == std::vector<std::string>{".host", ".locks", ".pool", id});
}

TEST_CASE("a VM's host-only link names its session, keeps its id from new sessions and goes with it", "[store]") {
  avm::TempDir tmp;
  SessionStore store(tmp.path());
  std::string id = make_session(store, "s3ss10");
  store.link_host_dir(id, "warm1");
  CHECK(fs::read_symlink(tmp.path() / ".host" / "warm1") == fs::path(id));
  CHECK(store.host_links(id) == std::vector<std::string>{"warm1"});
  CHECK(store.host_links("other1").empty());
  CHECK(error_of([&] { store.create("warm1"); }) ==
        "id warm1 already exists: session s3ss10 runs on a warm-pool VM started under it | choose another id, or "
        "stop that session first with agent-stop s3ss10");
  // Only a link naming this session is removed.
  store.unlink_host_dir("other1", "warm1");
  CHECK(fs::is_symlink(tmp.path() / ".host" / "warm1"));
  SessionLock lock = store.lock(id);
  store.remove(lock);
  CHECK_FALSE(fs::exists(fs::symlink_status(tmp.path() / ".host" / "warm1")));
  CHECK_FALSE(fs::exists(tmp.path() / ".host"));
}

TEST_CASE("crash leftovers are cleaned by a later create, live ones are not", "[store]") {
  avm::TempDir tmp;
  SessionStore store(tmp.path());
  make_session(store, "keep");
  // A creation and a removal that crashed halfway.
  fs::create_directories(tmp.path() / ".creating-dead1-a1b2c3" / "repo" / "x");
  fs::create_directories(tmp.path() / ".removing-dead2-d4e5f6" / "opencode");
  ::chmod((tmp.path() / ".removing-dead2-d4e5f6").c_str(), 0500);
  // A creation in progress elsewhere (its lock is held).
  NewSession live = store.create("live");
  fs::path live_dir = live.dir();

  CHECK(store.list().size() == 1);  // dot-folders never list
  make_session(store);
  CHECK_FALSE(fs::exists(tmp.path() / ".creating-dead1-a1b2c3"));
  CHECK_FALSE(fs::exists(tmp.path() / ".removing-dead2-d4e5f6"));
  CHECK(fs::exists(live_dir));
  CHECK(store.exists("keep"));
}

TEST_CASE("list reports broken sessions beside good ones", "[store]") {
  avm::TempDir tmp;
  SessionStore store(tmp.path());
  std::string good = make_session(store, "good");
  make_session(store, "badjson");
  avm::write_file_atomic(store.paths("badjson").meta(), "{ not json");
  make_session(store, "future");
  avm::write_file_atomic(store.paths("future").meta(), R"({"schema": 7})");
  make_session(store, "nometa");
  fs::remove(store.paths("nometa").meta());
  make_session(store, "wrongid");
  avm::write_file_atomic(store.paths("wrongid").meta(), format_meta(meta_for("someone")));
  // Not sessions: a stray file, a dot folder, a name that is not an id.
  avm::write_file_atomic(tmp.path() / "notes.txt", "x");
  fs::create_directories(tmp.path() / ".trash");
  fs::create_directories(tmp.path() / "Has Space");

  auto all = store.list();
  REQUIRE(all.size() == 5);
  std::map<std::string, SessionInfo> by_id;
  for (auto& s : all) by_id[s.id] = s;
  CHECK(by_id["good"].state == SessionInfo::State::Ok);
  REQUIRE(by_id["good"].meta.has_value());
  CHECK(by_id["good"].meta->id == "good");
  CHECK(by_id["badjson"].state == SessionInfo::State::Corrupt);
  CHECK(by_id["badjson"].problem.find("not valid JSON") != std::string::npos);
  CHECK(by_id["future"].state == SessionInfo::State::UnknownSchema);
  CHECK(by_id["future"].problem.find("schema version 7") != std::string::npos);
  CHECK(by_id["nometa"].state == SessionInfo::State::Corrupt);
  CHECK(by_id["nometa"].problem.find("missing") != std::string::npos);
  CHECK(by_id["wrongid"].state == SessionInfo::State::Corrupt);
  CHECK(by_id["wrongid"].problem.find("names session 'someone'") != std::string::npos);
  // Sorted by id.
  CHECK(all.front().id == "badjson");
  // Broken sessions can still be named, locked and removed.
  CHECK(store.resolve("badj") == "badjson");
  auto l = store.lock("badjson");
  store.remove(l);
  CHECK_FALSE(store.exists("badjson"));
  CHECK(store.load("good").id == "good");
}

TEST_CASE("an empty or missing store lists nothing", "[store]") {
  avm::TempDir tmp;
  CHECK(SessionStore(tmp.path() / "nope").list().empty());
  CHECK(SessionStore(tmp.path()).list().empty());
}

TEST_CASE("resolve takes an id or a unique prefix", "[store]") {
  avm::TempDir tmp;
  SessionStore store(tmp.path());
  CHECK(error_of([&] { store.resolve("abc"); }).find("start one with agent-spawn") != std::string::npos);
  for (auto id : {"abc", "abcdef", "abd123", "xyz789"}) make_session(store, id);
  CHECK(store.resolve("xyz789") == "xyz789");
  CHECK(store.resolve("x") == "xyz789");
  CHECK(store.resolve("abd") == "abd123");
  CHECK(store.resolve("abcd") == "abcdef");
  CHECK(store.resolve("abc") == "abc");  // exact beats the longer id it prefixes
  CHECK(store.resolve("XYZ") == "xyz789");  // typed in capitals
  CHECK(store.resolve(" xy ") == "xyz789");

  std::string amb = error_of([&] { store.resolve("ab"); });
  CHECK(amb.find("'ab' matches 3 sessions: abc, abcdef, abd123") != std::string::npos);
  CHECK(amb.find("type more characters") != std::string::npos);
  std::string unknown = error_of([&] { store.resolve("q"); });
  CHECK(unknown.find("no session 'q'") != std::string::npos);
  CHECK(unknown.find("agent-list") != std::string::npos);
  // Leftovers and dot folders are never matched.
  fs::create_directories(tmp.path() / ".creating-qq-123456");
  CHECK_THROWS(store.resolve("q"));
}

TEST_CASE("resolve rejects paths before touching the filesystem", "[store]") {
  avm::TempDir tmp;
  SessionStore store(tmp.path());
  make_session(store, "abc");
  fs::create_directories(tmp.path() / "abc" / "sub");
  for (const char* bad : {"..", "../abc", "abc/sub", "/etc", ".", ".locks", "abc/..", "a\\b", ""}) {
    INFO(bad);
    CHECK_THROWS_AS(store.resolve(bad), avm::Error);
  }
  CHECK(error_of([&] { store.resolve("../x"); }).find("path separator") != std::string::npos);
  CHECK(error_of([&] { store.resolve(".."); }).find("relative path") != std::string::npos);
  CHECK_THROWS(store.dir(".."));
  CHECK_THROWS(store.lock_path("a/b"));
}

TEST_CASE("remove deletes the whole folder and nothing outside it", "[store]") {
  avm::TempDir tmp;
  avm::TempDir outside;
  avm::write_file_atomic(outside.path() / "precious", "keep me");
  SessionStore store(tmp.path() / "s");
  std::string id = make_session(store);
  SessionPaths p = store.paths(id);
  fs::create_directories(p.repo() / ".git" / "objects" / "ab");
  avm::write_file_atomic(p.repo() / ".git" / "objects" / "ab" / "cd", "obj", 0444);
  ::chmod((p.repo() / ".git" / "objects" / "ab").c_str(), 0555);
  fs::create_symlink(outside.path(), p.repo() / "link-out");
  fs::create_symlink(outside.path() / "precious", p.dir / "file-link");

  SessionLock l = store.lock(id);
  store.remove(l);
  CHECK_FALSE(l.held());
  CHECK_FALSE(store.exists(id));
  CHECK(names_in(store.root()) == std::vector<std::string>{".locks"});
  CHECK(names_in(store.root() / ".locks").empty());
  CHECK(avm::read_file(outside.path() / "precious") == "keep me");
}

TEST_CASE("a session folder that is a symlink is unlinked, never followed", "[store]") {
  avm::TempDir tmp;
  avm::TempDir outside;
  avm::write_file_atomic(outside.path() / "precious", "keep me");
  SessionStore store(tmp.path());
  make_session(store, "real");
  fs::create_symlink(outside.path(), tmp.path() / "sneaky");
  // Not listed, not resolvable as a session.
  CHECK(store.list().size() == 1);
  CHECK_THROWS(store.resolve("sneaky"));
  auto l = SessionLock::try_acquire(store.lock_path("sneaky"), "sneaky");
  REQUIRE(l.has_value());
  store.remove(*l);
  CHECK_FALSE(fs::exists(fs::symlink_status(tmp.path() / "sneaky")));
  CHECK(avm::read_file(outside.path() / "precious") == "keep me");
}

TEST_CASE("a command waiting for a session that gets removed is told so", "[store]") {
  avm::TempDir tmp;
  SessionStore store(tmp.path());
  std::string id = make_session(store);
  int up[2];
  REQUIRE(::pipe(up) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // Takes the lock, says so, holds it a moment, then removes the session.
    // There is no event to await for "the other process is now waiting";
    // the pause only makes that interleaving likely, and both outcomes are
    // checked below.
    ::close(up[0]);
    try {
      auto l = store.lock(id, 5s);
      if (::write(up[1], "L", 1) != 1) ::_exit(3);
      ::usleep(200 * 1000);
      store.remove(l);
    } catch (...) {
      ::_exit(2);
    }
    ::_exit(0);
  }
  ::close(up[1]);
  char c = 0;
  REQUIRE(::read(up[0], &c, 1) == 1);
  ::close(up[0]);
  avm::Child child(pid);
  // Whether the child already removed it or we waited for it, the answer is clear.
  std::string err = error_of([&] { store.lock(id, 10s); });
  INFO(err);
  CHECK((err.find("was removed while") != std::string::npos || err.find("no session") != std::string::npos));
  CHECK(child.wait() == 0);
  CHECK(names_in(tmp.path() / ".locks").empty());
}

TEST_CASE("save needs the session's lock", "[store]") {
  avm::TempDir tmp;
  SessionStore store(tmp.path());
  std::string a = make_session(store, "a");
  make_session(store, "b");
  auto la = store.lock("a");
  Meta m = store.load("a");
  m.intent = Intent::Running;
  m.history.push_back({avm::utc_now_iso8601(), std::nullopt, std::nullopt, ""});
  store.save(la, m);
  CHECK(store.load("a") == m);
  Meta mb = store.load("b");
  CHECK_THROWS_WITH(store.save(la, mb), Catch::Contains("without holding its lock"));
  la.release();
  CHECK_THROWS_WITH(store.save(la, m), Catch::Contains("without holding its lock"));
}

TEST_CASE("a save that cannot be written leaves the old meta.json", "[store][reliability]") {
  avm::TempDir tmp;
  SessionStore store(tmp.path());
  std::string id = make_session(store);
  Meta old = store.load(id);
  auto l = store.lock(id);
  Meta big = old;
  for (int i = 0; i < 200; ++i)
    big.history.push_back({avm::utc_now_iso8601(), avm::utc_now_iso8601(), StopHow::Crash, std::string(100, 'x')});

  // A file size limit makes write(2) fail with EFBIG part way, as a full disk would.
  struct rlimit saved {};
  REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved) == 0);
  auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = saved;
  small.rlim_cur = 4096;
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
  std::string err = error_of([&] { store.save(l, big); });
  ::setrlimit(RLIMIT_FSIZE, &saved);
  ::signal(SIGXFSZ, old_handler);

  CHECK(err.find("cannot write") != std::string::npos);
  CHECK(store.load(id) == old);
  // No temporary file left beside it.
  CHECK(names_in(store.dir(id)) == std::vector<std::string>{"meta.json", "opencode", "run", "ssh"});
  store.save(l, big);
  CHECK(store.load(id) == big);
}

TEST_CASE("a save onto a full filesystem leaves the old meta.json", "[store][reliability]") {
  if (::geteuid() != 0) {
    WARN("needs root for a private tmpfs; the file size limit case covers the same path");
    return;
  }
  avm::TempDir tmp;
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // A private mount namespace: the tmpfs vanishes with this process.
    auto step = [](bool ok, int code) {
      if (!ok) ::_exit(code);
    };
    step(::unshare(CLONE_NEWNS) == 0, 10);
    step(::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0, 11);
    step(::mount("tmpfs", tmp.path().c_str(), "tmpfs", 0, "size=256k") == 0, 12);
    try {
      SessionStore store(tmp.path() / "s");
      std::string id = make_session(store);
      Meta old = store.load(id);
      // Fill the disk.
      {
        std::string block(4096, 'f');
        avm::Fd fd(::open((tmp.path() / "filler").c_str(), O_WRONLY | O_CREAT, 0600));
        while (::write(fd.get(), block.data(), block.size()) > 0) {
        }
      }
      auto l = store.lock(id);
      Meta big = old;
      for (int i = 0; i < 100; ++i) big.history.push_back({"t", "u", StopHow::Quit, std::string(200, 'y')});
      bool threw = false;
      try {
        store.save(l, big);
      } catch (const avm::Error&) {
        threw = true;
      }
      step(threw, 13);
      step(store.load(id) == old, 14);
      int n = 0;
      for (auto& e : fs::directory_iterator(store.dir(id))) (void)e, ++n;
      step(n == 4, 15);
    } catch (...) {
      ::_exit(16);
    }
    ::_exit(0);
  }
  avm::Child child(pid);
  CHECK(child.wait() == 0);
}

TEST_CASE("a writer killed in the middle of a save leaves the old meta.json whole", "[store][reliability]") {
  avm::TempDir tmp;
  SessionStore store(tmp.path());
  std::string id = make_session(store);
  Meta old = store.load(id);
  Meta big = old;
  for (int i = 0; i < 200; ++i)
    big.history.push_back({avm::utc_now_iso8601(), avm::utc_now_iso8601(), StopHow::Crash, std::string(100, 'x')});
  const std::size_t full = format_meta(big).size();
  auto tmp_files = [&] {
    std::vector<fs::path> out;
    for (auto& e : fs::directory_iterator(store.dir(id)))
      if (e.path().filename().string().rfind(".meta.json.tmp-", 0) == 0) out.push_back(e.path());
    return out;
  };

  // A file size limit with SIGXFSZ left at its default kills the writer
  // inside write(2), after exactly `cut` bytes: a crash mid-save, made
  // deterministic.
  for (std::size_t cut : {std::size_t(0), std::size_t(1), std::size_t(4096), full / 2, full - 1}) {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      try {
        auto l = store.lock(id);
        ::signal(SIGXFSZ, SIG_DFL);
        struct rlimit lim {};
        ::getrlimit(RLIMIT_FSIZE, &lim);
        lim.rlim_cur = cut;
        ::setrlimit(RLIMIT_FSIZE, &lim);
        store.save(l, big);
      } catch (...) {
      }
      ::_exit(0);  // not reached when the kill lands
    }
    avm::Child child(pid);
    INFO("cut after " << cut << " of " << full << " bytes");
    CHECK(child.wait() == 128 + SIGXFSZ);
    // The cut-off copy is there, the size the kill left it at...
    auto left = tmp_files();
    REQUIRE(left.size() == 1);
    CHECK(fs::file_size(left[0]) == cut);
    // ...and meta.json is the old one, whole.
    CHECK(store.load(id) == old);
    fs::remove(left[0]);
  }
  // The session goes on: the next save lands whole.
  auto l = store.lock(id);
  store.save(l, big);
  CHECK(store.load(id) == big);
}

TEST_CASE("concurrent creators never share an id", "[store]") {
  avm::TempDir tmp;
  SessionStore store(tmp.path());
  constexpr int kProcs = 4, kEach = 15;
  std::vector<avm::Child> kids;
  for (int p = 0; p < kProcs; ++p) {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      try {
        for (int i = 0; i < kEach; ++i) make_session(store);
        // And all fight over one chosen id: exactly one may win.
        try {
          make_session(store, "contested");
        } catch (const avm::Error&) {
        }
      } catch (...) {
        ::_exit(2);
      }
      ::_exit(0);
    }
    kids.emplace_back(pid);
  }
  for (auto& k : kids) CHECK(k.wait() == 0);
  auto all = store.list();
  CHECK(all.size() == kProcs * kEach + 1);
  std::set<std::string> ids;
  for (auto& s : all) {
    CHECK(s.state == SessionInfo::State::Ok);
    ids.insert(s.id);
  }
  CHECK(ids.size() == all.size());
  CHECK(ids.count("contested") == 1);
}
