// Cloning over https from a real TLS server on 127.0.0.1: git's smart HTTP
// (git http-backend) behind a certificate signed by a CA made for the test.
// The clone trusts that CA only when SSL_CERT_FILE names it, checks the
// host name, and keeps credentials given in the URL out of everything it
// writes.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <functional>
#include <optional>

#include "helpers.h"
#include "sessions/clone.h"
#include "sessions/store.h"
#include "util/error.h"
#include "util/file.h"
#include "util/temp_dir.h"
#include "util/timestamp.h"

using namespace avm::sessions;
using avm::test::git;
using avm::test::ScopedEnv;
using avm::test::Server;
using avm::test::TestRepo;
namespace fs = std::filesystem;

namespace {

const fs::path kSource = AGENT_VM_TEST_SOURCE;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const avm::Error& e) {
    return std::string(e.what()) + " | " + e.hint();
  }
  return "no error";
}

// A test CA and two server certificates signed by it: one for 127.0.0.1
// (as an IP address and as a name: TLS libraries differ in which they
// match) and one for another host.
struct Certs {
  avm::TempDir dir{"avm-certs"};
  Certs() {
    for (auto [name, san] : {std::pair{"local", "IP:127.0.0.1,DNS:127.0.0.1"},
                             std::pair{"other", "DNS:other.invalid"}}) {
      auto r = avm::run({(kSource / "tests/integration/make_cert.sh").string(), dir.path().string(), name, san});
      INFO(r.out << r.err);
      REQUIRE(r.exit_code == 0);
    }
  }
  fs::path ca() const { return dir.path() / "ca.pem"; }
  fs::path pem(const std::string& n) const { return dir.path() / (n + ".pem"); }
  fs::path key(const std::string& n) const { return dir.path() / (n + ".key"); }
};

// tests/integration/tls_server.py serving the repositories under `root`
// with git's smart HTTP, asking for basic authentication when `auth` is set.
struct HttpsGit {
  std::unique_ptr<Server> server;
  std::uint16_t port = 0;
  HttpsGit(const Certs& c, const std::string& cert, const fs::path& root, const std::string& auth = "") {
    std::vector<std::string> argv{"/usr/bin/python3", (kSource / "tests/integration/tls_server.py").string(),
                                  "--cert", c.pem(cert).string(), "--key", c.key(cert).string(),
                                  "--git-root", root.string()};
    if (!auth.empty()) argv.insert(argv.end(), {"--auth", auth});
    server = std::make_unique<Server>(argv, "listening on https://127.0.0.1:");
    std::size_t at = server->wait_for("listening on https://127.0.0.1:");
    std::size_t end = server->wait_for("\n", std::chrono::seconds(20), at);
    port = static_cast<std::uint16_t>(std::stoul(server->log().substr(at, end - 1 - at)));
  }
  std::string url(const std::string& path, const std::string& credentials = "") const {
    return "https://" + (credentials.empty() ? "" : credentials + "@") + "127.0.0.1:" + std::to_string(port) +
           "/" + path;
  }
};

// Every file under `dir` whose content holds `needle`.
std::vector<std::string> files_holding(const fs::path& dir, const std::string& needle) {
  std::vector<std::string> out;
  for (auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file() && avm::read_file(e.path()).find(needle) != std::string::npos)
      out.push_back(e.path().string());
  return out;
}

}  // namespace

TEST_CASE("clone over https with the CA trusted: default branch, branch, tag and commit", "[https]") {
  Certs certs;
  TestRepo origin;
  HttpsGit srv(certs, "local", origin.path.parent_path());
  ScopedEnv ca("SSL_CERT_FILE", certs.ca().string());
  avm::TempDir tmp;

  CloneResult d = clone_repo(srv.url("origin"), "", tmp.path() / "d");
  CHECK(d.checked_out == "main");
  CHECK(d.commit == origin.c3);
  CHECK(git(tmp.path() / "d", {"status", "--porcelain"}).empty());
  CHECK(git(tmp.path() / "d", {"remote", "get-url", "origin"}) == srv.url("origin"));

  CloneResult b = clone_repo(srv.url("origin"), "dev", tmp.path() / "b");
  CHECK(b.commit == origin.c2);
  CHECK(git(tmp.path() / "b", {"branch", "--show-current"}) == "dev");

  CloneResult t = clone_repo(srv.url("origin"), "v1-annotated", tmp.path() / "t");
  CHECK(t.commit == origin.c1);
  CHECK(t.detached);

  CloneResult c = clone_repo(srv.url("origin"), origin.c4.substr(0, 10), tmp.path() / "c");
  CHECK(c.commit == origin.c4);
  CHECK(git(tmp.path() / "c", {"rev-parse", "HEAD"}) == origin.c4);

  // It went over smart HTTP, not some other way.
  CHECK(srv.server->log().find("POST /origin/git-upload-pack") != std::string::npos);
}

TEST_CASE("clone over https refuses a certificate it cannot verify, and leaves nothing", "[https]") {
  Certs certs;
  TestRepo origin;
  avm::TempDir tmp;
  fs::path dest = tmp.path() / "r";

  SECTION("signed by a CA that is not trusted") {
    HttpsGit srv(certs, "local", origin.path.parent_path());
    // The system's CAs only: the test CA is not among them.
    ScopedEnv none("SSL_CERT_FILE", std::nullopt);
    std::string err = error_of([&] { clone_repo(srv.url("origin"), "", dest); });
    INFO(err);
    CHECK(err.find("certificate") != std::string::npos);
    CHECK(err.find("127.0.0.1:" + std::to_string(srv.port)) != std::string::npos);
    CHECK(err.find("SSL_CERT_FILE") != std::string::npos);  // the fix
    CHECK_FALSE(fs::exists(dest));
    CHECK(srv.server->log().find("git-upload-pack") == std::string::npos);  // nothing was asked
  }
  SECTION("issued for another host name") {
    HttpsGit srv(certs, "other", origin.path.parent_path());
    ScopedEnv ca("SSL_CERT_FILE", certs.ca().string());
    std::string err = error_of([&] { clone_repo(srv.url("origin"), "", dest); });
    INFO(err);
    CHECK(err.find("certificate") != std::string::npos);
    CHECK_FALSE(fs::exists(dest));
    CHECK(srv.server->log().find("git-upload-pack") == std::string::npos);
  }
}

TEST_CASE("credentials in an https URL reach the server and are written nowhere", "[https]") {
  Certs certs;
  TestRepo origin;
  const std::string token = "tok-3f9a1c77e2";
  HttpsGit srv(certs, "local", origin.path.parent_path(), "alice:" + token);
  ScopedEnv ca("SSL_CERT_FILE", certs.ca().string());
  avm::TempDir tmp;
  SessionStore store(tmp.path() / "sessions");

  SECTION("the right ones clone, and the session keeps no trace of the token") {
    std::string id;
    {
      NewSession ns = store.create();
      id = ns.id();
      CloneResult r = clone_repo(srv.url("origin", "alice:" + token), "dev", ns.paths().repo());
      CHECK(r.url == srv.url("origin", "alice"));
      CHECK(r.commit == origin.c2);
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
    CHECK(srv.server->log().find("auth ok user=alice") != std::string::npos);
    fs::path folder = store.paths(id).dir;
    CHECK(files_holding(folder, token).empty());
    CHECK(git(store.paths(id).repo(), {"remote", "get-url", "origin"}) == srv.url("origin", "alice"));
  }
  SECTION("wrong ones are refused as an authentication failure, leaving nothing") {
    fs::path dest = tmp.path() / "r";
    std::string err = error_of([&] { clone_repo(srv.url("origin", "alice:wrong"), "", dest); });
    INFO(err);
    CHECK(err.find("authentication failed") != std::string::npos);
    CHECK(err.find("wrong") == std::string::npos);  // the password is not repeated
    CHECK_FALSE(fs::exists(dest));
    CHECK(srv.server->log().find("auth refused user=alice") != std::string::npos);
  }
  SECTION("none at all are refused too") {
    fs::path dest = tmp.path() / "r";
    std::string err = error_of([&] { clone_repo(srv.url("origin"), "", dest); });
    CHECK(err.find("authentication failed") != std::string::npos);
    CHECK_FALSE(fs::exists(dest));
  }
}
