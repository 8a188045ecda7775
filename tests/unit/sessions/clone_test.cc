#include "sessions/clone.h"

#include <catch2/catch.hpp>
#include <functional>

#include "helpers.h"
#include "util/error.h"
#include "util/file.h"
#include "util/temp_dir.h"

using namespace avm::sessions;
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

// What `git` itself says about the clone.
std::string head_of(const fs::path& repo) { return git(repo, {"rev-parse", "HEAD"}); }
std::string branch_of(const fs::path& repo) { return git(repo, {"branch", "--show-current"}); }

}  // namespace

TEST_CASE("a local path clones the remote's default branch", "[clone]") {
  TestRepo origin;
  avm::TempDir tmp;
  fs::path dest = tmp.path() / "repo";
  std::vector<CloneProgress> seen;
  CloneResult r = clone_repo(origin.path.string(), "", dest, [&](const CloneProgress& p) { seen.push_back(p); });
  CHECK(r.commit == origin.c3);
  CHECK(r.checked_out == "main");
  CHECK_FALSE(r.detached);
  CHECK(r.kind == CloneResult::RefKind::Branch);
  CHECK(r.url == origin.path.string());
  CHECK(head_of(dest) == origin.c3);
  CHECK(branch_of(dest) == "main");
  CHECK(avm::read_file(dest / "README") == "two\n");
  // A clean work tree that tracks origin/main.
  CHECK(git(dest, {"status", "--porcelain"}).empty());
  CHECK(git(dest, {"rev-parse", "--abbrev-ref", "main@{upstream}"}) == "origin/main");
  // Every branch and tag came along.
  CHECK(git(dest, {"rev-parse", "origin/dev"}) == origin.c2);
  CHECK(git(dest, {"rev-parse", "v1^{commit}"}) == origin.c1);
  // Progress went through checkout at least.
  bool checkout = false;
  for (auto& p : seen) checkout |= p.phase == CloneProgress::Phase::CheckingOut;
  CHECK(checkout);
}

TEST_CASE("a path or a file:// URL copies the objects and links none", "[clone]") {
  // The guest writes to its clone: a hard link would let it reach the
  // source repository's files.
  TestRepo origin;
  git(origin.path, {"gc", "-q"});  // a pack, as most real repositories have
  avm::TempDir tmp;
  for (const std::string& url : {origin.path.string(), "file://" + origin.path.string()}) {
    INFO(url);
    fs::path dest = tmp.path() / (url.front() == '/' ? "path" : "url");
    CloneResult r = clone_repo(url, "", dest);
    CHECK(r.commit == origin.c3);
    CHECK(r.url == url);
    CHECK(git(dest, {"remote", "get-url", "origin"}) == url);
    CHECK(git(dest, {"fsck", "--no-dangling"}).empty());
    int files = 0;
    for (const auto& e : fs::recursive_directory_iterator(dest / ".git" / "objects")) {
      if (!e.is_regular_file()) continue;
      ++files;
      CHECK(fs::hard_link_count(e.path()) == 1);
    }
    CHECK(files > 0);
  }
}

TEST_CASE("the remote's HEAD decides the default, not a hard-coded main", "[clone]") {
  TestRepo origin;
  git(origin.path, {"symbolic-ref", "HEAD", "refs/heads/dev"});
  avm::TempDir tmp;
  CloneResult r = clone_repo("file://" + origin.path.string(), "", tmp.path() / "r");
  CHECK(r.checked_out == "dev");
  CHECK(r.commit == origin.c2);
  CHECK(branch_of(tmp.path() / "r") == "dev");
  CHECK(fs::exists(tmp.path() / "r" / "dev.txt"));
}

TEST_CASE("a ref option takes a branch, with a local tracking branch", "[clone]") {
  TestRepo origin;
  avm::TempDir tmp;
  fs::path dest = tmp.path() / "r";
  CloneResult r = clone_repo(origin.path.string(), "feature/x", dest);
  CHECK(r.checked_out == "feature/x");
  CHECK_FALSE(r.detached);
  CHECK(r.commit == origin.c4);
  CHECK(branch_of(dest) == "feature/x");
  CHECK(git(dest, {"rev-parse", "--abbrev-ref", "feature/x@{upstream}"}) == "origin/feature/x");
  CHECK(fs::exists(dest / "x.txt"));
  CHECK_FALSE(fs::exists(dest / "dev.txt"));
  CHECK(git(dest, {"status", "--porcelain"}).empty());
  // Like `git clone --branch`: no other local branch.
  CHECK(git(dest, {"branch", "--format=%(refname:short)"}) == "feature/x");
}

TEST_CASE("a ref option takes a tag, lightweight or annotated, detached", "[clone]") {
  TestRepo origin;
  avm::TempDir tmp;
  for (std::string tag : {"v1", "v1-annotated"}) {
    fs::path dest = tmp.path() / tag;
    CloneResult r = clone_repo(origin.path.string(), tag, dest);
    CHECK(r.kind == CloneResult::RefKind::Tag);
    CHECK(r.detached);
    CHECK(r.checked_out == tag);
    CHECK(r.commit == origin.c1);
    CHECK(head_of(dest) == origin.c1);
    CHECK(branch_of(dest).empty());
    CHECK(avm::read_file(dest / "README") == "one\n");
    CHECK(git(dest, {"status", "--porcelain"}).empty());
  }
}

TEST_CASE("a ref option takes a commit, full or abbreviated", "[clone]") {
  TestRepo origin;
  avm::TempDir tmp;
  CloneResult full = clone_repo(origin.path.string(), origin.c2, tmp.path() / "full");
  CHECK(full.kind == CloneResult::RefKind::Commit);
  CHECK(full.detached);
  CHECK(full.commit == origin.c2);
  CHECK(head_of(tmp.path() / "full") == origin.c2);

  CloneResult abbrev = clone_repo(origin.path.string(), origin.c4.substr(0, 8), tmp.path() / "abbrev");
  CHECK(abbrev.commit == origin.c4);
  CHECK(abbrev.checked_out == origin.c4.substr(0, 8));
  CHECK(head_of(tmp.path() / "abbrev") == origin.c4);
  CHECK(git(tmp.path() / "abbrev", {"status", "--porcelain"}).empty());
}

TEST_CASE("an unknown ref lists branches that exist and leaves nothing", "[clone]") {
  TestRepo origin;
  avm::TempDir tmp;
  fs::path dest = tmp.path() / "r";
  std::string err = error_of([&] { clone_repo(origin.path.string(), "nope", dest); });
  CHECK(err.find("no branch, tag or commit 'nope'") != std::string::npos);
  CHECK(err.find("branches there: main, dev, feature/x") != std::string::npos);
  CHECK_FALSE(fs::exists(dest));
  // A sha that is not there either.
  err = error_of([&] { clone_repo(origin.path.string(), "deadbeefdeadbeef", dest); });
  CHECK(err.find("no branch, tag or commit 'deadbeefdeadbeef'") != std::string::npos);
  CHECK_FALSE(fs::exists(dest));
}

TEST_CASE("a missing repository is an error naming it and leaves nothing", "[clone]") {
  avm::TempDir tmp;
  fs::path dest = tmp.path() / "r";
  std::string err = error_of([&] { clone_repo((tmp.path() / "nothing").string(), "", dest); });
  CHECK(err.find("no git repository at " + (tmp.path() / "nothing").string()) != std::string::npos);
  CHECK_FALSE(fs::exists(dest));
  // A folder that is not a repository.
  fs::create_directories(tmp.path() / "plain");
  err = error_of([&] { clone_repo((tmp.path() / "plain").string(), "", dest); });
  CHECK(err.find("no git repository at") != std::string::npos);
  CHECK_FALSE(fs::exists(dest));
}

TEST_CASE("an empty repository is refused and leaves nothing", "[clone]") {
  avm::TempDir tmp;
  fs::create_directories(tmp.path() / "empty");
  git(tmp.path() / "empty", {"init", "-q", "-b", "main"});
  fs::path dest = tmp.path() / "r";
  std::string err = error_of([&] { clone_repo((tmp.path() / "empty").string(), "", dest); });
  CHECK(err.find("is empty") != std::string::npos);
  CHECK_FALSE(fs::exists(dest));
}

TEST_CASE("a remote without HEAD falls back to main", "[clone]") {
  TestRepo origin;
  // A bare copy whose HEAD names a branch that does not exist.
  avm::TempDir tmp;
  fs::path bare = tmp.path() / "bare.git";
  git(tmp.path(), {"clone", "-q", "--bare", origin.path.string(), bare.string()});
  git(bare, {"symbolic-ref", "HEAD", "refs/heads/gone"});
  CloneResult r = clone_repo(bare.string(), "", tmp.path() / "r");
  CHECK(r.checked_out == "main");
  CHECK(r.commit == origin.c3);
  CHECK(branch_of(tmp.path() / "r") == "main");
}

TEST_CASE("a relative local path is made absolute", "[clone]") {
  TestRepo origin;
  avm::TempDir tmp;
  auto old = fs::current_path();
  fs::current_path(origin.path.parent_path());
  CloneResult r;
  REQUIRE_NOTHROW(r = clone_repo("./origin/", "", tmp.path() / "r"));
  fs::current_path(old);
  CHECK(r.url == origin.path.string());
  CHECK(r.commit == origin.c3);
}

TEST_CASE("an unreachable server names host and port and leaves nothing", "[clone]") {
  avm::TempDir tmp;
  std::uint16_t port = avm::test::free_port();  // nothing listens there
  fs::path dest = tmp.path() / "r";
  std::string err = error_of([&] { clone_repo("git://127.0.0.1:" + std::to_string(port) + "/x.git", "", dest); });
  CHECK(err.find("cannot reach 127.0.0.1:" + std::to_string(port)) != std::string::npos);
  CHECK(err.find("server is up") != std::string::npos);
  CHECK_FALSE(fs::exists(dest));
  err = error_of([&] { clone_repo("http://127.0.0.1:" + std::to_string(port) + "/x.git", "", dest); });
  CHECK(err.find("cannot reach 127.0.0.1:" + std::to_string(port)) != std::string::npos);
  CHECK_FALSE(fs::exists(dest));
}

TEST_CASE("a clone can be cancelled and leaves nothing", "[clone]") {
  TestRepo origin;
  avm::TempDir tmp;
  std::atomic<bool> cancel{true};
  CloneOptions o;
  o.cancel = &cancel;
  fs::path dest = tmp.path() / "r";
  // A local copy has no callbacks: the cancel is seen once it is done (a
  // transfer cancelled mid-way is in the git:// integration tests).
  std::string err = error_of([&] { clone_repo("file://" + origin.path.string(), dest, o); });
  CHECK(err.find("cancelled") != std::string::npos);
  CHECK_FALSE(fs::exists(dest));
}

TEST_CASE("a .gitattributes anywhere in the tree still converts line endings", "[clone]") {
  // Checkouts skip the filters only when nothing could ask for one.
  avm::TempDir tmp;
  fs::path origin = tmp.path() / "origin";
  fs::create_directories(origin / "sub");
  git(origin, {"init", "-q", "-b", "main"});
  avm::write_file_atomic(origin / "plain.txt", "a\r\nb\n");
  avm::write_file_atomic(origin / "sub" / ".gitattributes", "*.txt text eol=crlf\n");
  avm::write_file_atomic(origin / "sub" / "crlf.txt", "c\nd\n");
  git(origin, {"add", "-A"});
  git(origin, {"commit", "-q", "-m", "attributes"});
  fs::path dest = tmp.path() / "clone";
  clone_repo(origin.string(), "", dest);
  CHECK(avm::read_file(dest / "sub" / "crlf.txt") == "c\r\nd\r\n");
  CHECK(avm::read_file(dest / "plain.txt") == "a\r\nb\n");  // stored bytes, untouched

  // Without any attributes the stored bytes come out as they are.
  fs::path bare = tmp.path() / "bare";
  fs::create_directories(bare);
  git(bare, {"init", "-q", "-b", "main"});
  avm::write_file_atomic(bare / "mixed.txt", "a\r\nb\n");
  git(bare, {"add", "-A"});
  git(bare, {"commit", "-q", "-m", "no attributes"});
  fs::path dest2 = tmp.path() / "clone2";
  clone_repo(bare.string(), "", dest2);
  CHECK(avm::read_file(dest2 / "mixed.txt") == "a\r\nb\n");
  CHECK(git(dest2, {"status", "--porcelain"}).empty());
}

TEST_CASE("clone never overwrites an existing destination", "[clone]") {
  TestRepo origin;
  avm::TempDir tmp;
  fs::create_directories(tmp.path() / "r");
  avm::write_file_atomic(tmp.path() / "r" / "mine", "x");
  CHECK_THROWS_WITH(clone_repo(origin.path.string(), "", tmp.path() / "r"), Catch::Contains("already exists"));
  CHECK(avm::read_file(tmp.path() / "r" / "mine") == "x");
}

TEST_CASE("repository URLs are read like git reads them", "[clone]") {
  auto u = parse_repo_url("https://github.com/sst/opencode.git");
  CHECK(u.kind == UrlKind::Http);
  CHECK(u.host == "github.com");
  CHECK(u.port == 443);
  CHECK(u.path == "/sst/opencode.git");
  u = parse_repo_url("http://user:pw@host:8080/r");
  CHECK(u.port == 8080);
  CHECK(u.user == "user");
  u = parse_repo_url("git://127.0.0.1/x");
  CHECK(u.kind == UrlKind::Git);
  CHECK(u.port == 9418);
  u = parse_repo_url("ssh://git@[::1]:2222/srv/x.git");
  CHECK(u.kind == UrlKind::Ssh);
  CHECK(u.host == "::1");
  CHECK(u.port == 2222);
  CHECK(u.user == "git");
  u = parse_repo_url("git@example.com:team/repo.git");
  CHECK(u.kind == UrlKind::Ssh);
  CHECK(u.host == "example.com");
  CHECK(u.user == "git");
  CHECK(u.path == "team/repo.git");
  CHECK(u.port == 22);
  CHECK(parse_repo_url("host:repo").kind == UrlKind::Ssh);
  CHECK(parse_repo_url("file:///srv/r").kind == UrlKind::File);
  CHECK(parse_repo_url("/srv/r").kind == UrlKind::LocalPath);
  CHECK(parse_repo_url("./a:b").kind == UrlKind::LocalPath);
  CHECK(parse_repo_url("dir/with:colon").kind == UrlKind::LocalPath);

  for (const char* bad : {"", "   ", "ftp://host/x", "https:///x", "https://host:0/x", "https://host:99999/x",
                          "https://host:abc/x", "file://otherhost/x", "ssh://[::1/x", "@:x"}) {
    INFO(bad);
    CHECK_THROWS_WITH(parse_repo_url(bad), Catch::Contains("invalid repository URL"));
  }
  CHECK_THROWS_WITH(clone_repo("ftp://h/x", "", "/nonexistent/never"), Catch::Contains("'ftp' is not supported"));
}

TEST_CASE("passwords in URLs are never repeated", "[clone]") {
  CHECK(redact_url("https://user:s3cret@host/x") == "https://user@host/x");
  CHECK(redact_url("https://tok@host/x") == "https://tok@host/x");
  CHECK(redact_url("https://host/x") == "https://host/x");
  CHECK(redact_url("git@host:x") == "git@host:x");
  std::string err = error_of([] { parse_repo_url("ftp://user:s3cret@h/x"); });
  CHECK(err.find("s3cret") == std::string::npos);
}

TEST_CASE("progress reads as one line", "[clone]") {
  CloneProgress p;
  p.received_objects = 50;
  p.total_objects = 200;
  p.received_bytes = 3 * 1024 * 1024;
  CHECK(describe(p) == "25% (50/200 objects, 3.0 MiB)");
  p.phase = CloneProgress::Phase::Resolving;
  p.indexed_deltas = 4;
  p.total_deltas = 9;
  CHECK(describe(p) == "resolving deltas 4/9");
  p.phase = CloneProgress::Phase::CheckingOut;
  p.checkout_done = 3;
  p.checkout_total = 7;
  CHECK(describe(p) == "checking out 3/7 files");
}
