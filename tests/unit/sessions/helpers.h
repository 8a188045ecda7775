// Test helpers for sessions/: real git repositories made with `git`, free
// loopback ports, and servers (git daemon, sshd) owned by RAII objects that
// are ready when constructed (they wait for the server's own "listening"
// line, with a deadline, never a sleep).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "util/error.h"
#include "util/fd.h"
#include "util/file.h"
#include "util/process.h"
#include "util/strings.h"
#include "util/temp_dir.h"

namespace avm::test {

namespace fs = std::filesystem;

// Sets an environment variable for one test (unsets it for nullopt) and puts
// the old value back.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* v = std::getenv(name)) old_ = v;
    if (value)
      ::setenv(name, value->c_str(), 1);
    else
      ::unsetenv(name);
  }
  ScopedEnv(const char* name, const char* value)
      : ScopedEnv(name, value ? std::optional<std::string>(value) : std::nullopt) {}
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;
  ~ScopedEnv() {
    if (old_)
      ::setenv(name_.c_str(), old_->c_str(), 1);
    else
      ::unsetenv(name_.c_str());
  }

 private:
  std::string name_;
  std::optional<std::string> old_;
};

// A fixed identity and no user or system config: the same repository on
// every machine.
inline std::vector<std::string> git_env() {
  return {"GIT_AUTHOR_NAME=Test",       "GIT_AUTHOR_EMAIL=test@example.invalid",
          "GIT_COMMITTER_NAME=Test",    "GIT_COMMITTER_EMAIL=test@example.invalid",
          "GIT_CONFIG_NOSYSTEM=1",      "GIT_CONFIG_GLOBAL=/dev/null",
          "GIT_TERMINAL_PROMPT=0"};
}

// Runs git in `dir`; fails the test unless it succeeds. Returns stdout, trimmed.
inline std::string git(const fs::path& dir, std::vector<std::string> args) {
  args.insert(args.begin(), "git");
  RunResult r = run(args, {.cwd = dir, .env = git_env(), .timeout = std::chrono::seconds(60)});
  INFO("git " << shell_join(args) << " in " << dir << ": " << r.out << r.err);
  REQUIRE(r.exit_code == 0);
  return trim(r.out);
}

// A repository with some history:
//   main:  c1 (tag v1, annotated tag v1-annotated) -- c3
//   dev:   c1 -- c2 (file dev.txt)
//   feature/x: c1 -- c4
struct TestRepo {
  TempDir tmp{"avm-test-repo"};
  fs::path path = tmp.path() / "origin";
  std::string c1, c2, c3, c4;

  TestRepo() {
    fs::create_directories(path);
    git(path, {"init", "-q", "-b", "main"});
    write_file_atomic(path / "README", "one\n");
    git(path, {"add", "README"});
    git(path, {"commit", "-q", "-m", "first"});
    c1 = git(path, {"rev-parse", "HEAD"});
    git(path, {"tag", "v1"});
    git(path, {"tag", "-a", "-m", "annotated", "v1-annotated"});
    git(path, {"checkout", "-q", "-b", "dev"});
    write_file_atomic(path / "dev.txt", "dev\n");
    git(path, {"add", "dev.txt"});
    git(path, {"commit", "-q", "-m", "on dev"});
    c2 = git(path, {"rev-parse", "HEAD"});
    git(path, {"checkout", "-q", "-b", "feature/x", c1});
    write_file_atomic(path / "x.txt", "x\n");
    git(path, {"add", "x.txt"});
    git(path, {"commit", "-q", "-m", "on feature/x"});
    c4 = git(path, {"rev-parse", "HEAD"});
    git(path, {"checkout", "-q", "main"});
    write_file_atomic(path / "README", "two\n");
    git(path, {"commit", "-q", "-am", "second"});
    c3 = git(path, {"rev-parse", "HEAD"});
  }
};

// A port nobody listens on right now (bound and closed again).
inline std::uint16_t free_port() {
  Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(s);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  REQUIRE(::getsockname(s.get(), reinterpret_cast<sockaddr*>(&a), &len) == 0);
  return ntohs(a.sin_port);
}

// A server started as our child (in its own process group), killed and
// reaped with its children when this goes. The constructor returns once
// `ready_text` appeared on the server's stdout or stderr.
class Server {
 public:
  Server(std::vector<std::string> argv, const std::string& ready_text,
         std::chrono::seconds deadline = std::chrono::seconds(20), std::vector<std::string> env = {}) {
    int p[2];
    REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    Fd r(p[0]), w(p[1]);
    child_ = spawn(argv, {.env = std::move(env), .stdout_fd = w.get(), .stderr_fd = w.get(),
                          .new_session = true});
    w.reset();
    err_ = std::move(r);
    what_ = shell_join(argv);
    wait_for(ready_text, deadline);
  }
  // Reads the server's output until `text` appears after offset `from`
  // (default: anywhere); fails the test at the deadline or if the server
  // closes its output. Returns the offset just past the text.
  std::size_t wait_for(const std::string& text, std::chrono::seconds deadline = std::chrono::seconds(20),
                       std::size_t from = 0) {
    auto until = std::chrono::steady_clock::now() + deadline;
    char buf[4096];
    for (;;) {
      auto at = log_.find(text, from);
      if (at != std::string::npos) return at + text.size();
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
      INFO("waiting for '" << text << "' from " << what_ << "; output so far: " << log_);
      REQUIRE(left.count() > 0);
      pollfd pf{err_.get(), POLLIN, 0};
      int n = ::poll(&pf, 1, static_cast<int>(left.count()));
      if (n <= 0) continue;
      ssize_t got = ::read(err_.get(), buf, sizeof buf);
      REQUIRE(got > 0);  // EOF: the server died
      log_.append(buf, static_cast<size_t>(got));
    }
  }
  ~Server() {
    if (child_.pid() > 0) ::kill(-child_.pid(), SIGKILL);  // its whole group
  }
  // Everything the server wrote so far.
  const std::string& log() {
    char buf[4096];
    for (;;) {
      pollfd pf{err_.get(), POLLIN, 0};
      if (::poll(&pf, 1, 0) != 1) break;
      ssize_t n = ::read(err_.get(), buf, sizeof buf);
      if (n <= 0) break;
      log_.append(buf, static_cast<size_t>(n));
    }
    return log_;
  }
  pid_t pid() const { return child_.pid(); }

 private:
  Child child_;
  Fd err_;
  std::string log_;
  std::string what_;
};

// `git daemon` exporting every repository under `base` on 127.0.0.1.
struct GitDaemon {
  std::uint16_t port = free_port();
  Server server;
  explicit GitDaemon(const fs::path& base)
      : server({"git", "daemon", "--listen=127.0.0.1", "--port=" + std::to_string(port),
                "--base-path=" + base.string(), "--export-all", "--reuseaddr", "--verbose",
                "--informative-errors", base.string()},
               "Ready to rumble", std::chrono::seconds(20), git_env()) {}
  std::string url(const std::string& path) const {
    return "git://127.0.0.1:" + std::to_string(port) + "/" + path;
  }
};

}  // namespace avm::test
