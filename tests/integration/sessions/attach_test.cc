// agent-attach's SSH client against a real OpenSSH server on 127.0.0.1,
// configured as the guest's is: the session's host key, the session's
// authorized_keys, public keys only. Also clones over ssh through the same
// server, with keys from a real ssh-agent.
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>

#include "helpers.h"
#include "sessions/attach.h"
#include "sessions/clone.h"
#include "sessions/keys.h"
#include "util/error.h"
#include "util/file.h"
#include "util/temp_dir.h"

using namespace avm::sessions;
using avm::test::free_port;
using avm::test::git;
using avm::test::ScopedEnv;
using avm::test::Server;
using avm::test::TestRepo;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

std::string me() {
  const passwd* pw = ::getpwuid(::getuid());
  REQUIRE(pw);
  return pw->pw_name;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const avm::Error& e) {
    return std::string(e.what()) + " | " + e.hint();
  }
  return "no error";
}

// A session's ssh/ folder and an sshd that plays the guest's part with it.
struct Guest {
  avm::TempDir tmp{"avm-sshd"};
  fs::path ssh = tmp.path() / "ssh";
  std::uint16_t port;
  std::unique_ptr<Server> sshd;

  Guest() : Guest(free_port()) {}
  explicit Guest(std::uint16_t listen_port) : port(listen_port) {
    generate_session_keys(ssh, "agent-vm session test");
    pin_host_key(ssh, port);
    KeyFiles k(ssh);
    // sshd's privilege separation directory (made by the service normally).
    fs::create_directories("/run/sshd");
    ::chmod("/run/sshd", 0755);
    fs::path config = tmp.path() / "sshd_config";
    avm::write_file_atomic(config,
                           "Port " + std::to_string(port) +
                               "\n"
                               "ListenAddress 127.0.0.1\n"
                               "HostKey " + k.host_key.string() + "\n"
                               "AuthorizedKeysFile " + k.authorized_keys.string() + "\n"
                               "PidFile none\n"
                               "UsePAM no\n"
                               "PasswordAuthentication no\n"
                               "KbdInteractiveAuthentication no\n"
                               "PubkeyAuthentication yes\n"
                               "PermitRootLogin prohibit-password\n"
                               "StrictModes no\n"
                               "AllowUsers " + me() + "\n"
                               "LogLevel VERBOSE\n");
    sshd = std::make_unique<Server>(
        std::vector<std::string>{"/usr/sbin/sshd", "-D", "-e", "-f", config.string()},
        "Server listening on 127.0.0.1 port " + std::to_string(port));
  }

  AttachOptions options(const std::string& command) const {
    AttachOptions o = attach_options(ssh, port);
    o.user = me();
    o.command = command;
    return o;
  }
};

// Runs attach() without a terminal: stdin from a pipe, stdout and stderr
// into files (so any amount of output fits while attach runs).
struct PipeRun {
  int status = -1;
  std::string out, err;
};
PipeRun run_piped(AttachOptions o, const std::string& input = "") {
  avm::TempDir tmp("avm-attach-out");
  int in[2];
  REQUIRE(::pipe(in) == 0);
  avm::Fd in_r(in[0]), in_w(in[1]);
  REQUIRE(input.size() < 60000);  // fits the pipe: written before attach reads it
  if (!input.empty()) REQUIRE(::write(in_w.get(), input.data(), input.size()) == static_cast<ssize_t>(input.size()));
  in_w.reset();
  avm::Fd out(::open((tmp.path() / "out").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  avm::Fd err(::open((tmp.path() / "err").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  REQUIRE(out);
  REQUIRE(err);
  o.in_fd = in_r.get();
  o.out_fd = out.get();
  o.err_fd = err.get();
  PipeRun r;
  r.status = attach(o);
  r.out = avm::read_file(tmp.path() / "out");
  r.err = avm::read_file(tmp.path() / "err");
  return r;
}

// attach() in a child on a pseudo-terminal, as a user's terminal would run it.
class PtyRun {
 public:
  PtyRun(const AttachOptions& opts, unsigned short rows, unsigned short cols) {
    struct winsize ws {};
    ws.ws_row = rows;
    ws.ws_col = cols;
    int master = -1;
    pid_t pid = ::forkpty(&master, nullptr, nullptr, &ws);
    REQUIRE(pid >= 0);
    if (pid == 0) {
      // The child: attach, then prove the terminal was put back as it was.
      struct termios before {}, after {};
      ::tcgetattr(0, &before);
      int code;
      try {
        code = attach(opts);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "attach failed: %s\n", e.what());
        code = 200;
      }
      ::tcgetattr(0, &after);
      if (before.c_lflag != after.c_lflag || before.c_iflag != after.c_iflag ||
          before.c_oflag != after.c_oflag)
        code = 201;
      ::_exit(code);
    }
    child_ = avm::Child(pid);
    master_ = avm::Fd(master);
  }
  // Reads the terminal until `text` shows, within the deadline.
  void expect(const std::string& text, std::chrono::seconds deadline = 20s) {
    auto until = std::chrono::steady_clock::now() + deadline;
    char buf[4096];
    while (screen_.find(text, seen_) == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
      INFO("waiting for '" << text << "' on the terminal; so far: " << screen_);
      REQUIRE(left.count() > 0);
      pollfd pf{master_.get(), POLLIN, 0};
      if (::poll(&pf, 1, static_cast<int>(left.count())) <= 0) continue;
      ssize_t n = ::read(master_.get(), buf, sizeof buf);
      REQUIRE(n > 0);
      screen_.append(buf, static_cast<size_t>(n));
    }
    seen_ = screen_.find(text, seen_) + text.size();
  }
  void type(const std::string& keys) {
    REQUIRE(::write(master_.get(), keys.data(), keys.size()) == static_cast<ssize_t>(keys.size()));
  }
  void resize(unsigned short rows, unsigned short cols) {
    struct winsize ws {};
    ws.ws_row = rows;
    ws.ws_col = cols;
    REQUIRE(::ioctl(master_.get(), TIOCSWINSZ, &ws) == 0);
  }
  void signal(int sig) { child_.kill(sig); }
  // The child's exit code. Keeps draining the terminal so it never blocks,
  // unless `drain` is false (a terminal that stopped reading).
  int wait(std::chrono::seconds deadline = 20s, bool drain = true) {
    auto until = std::chrono::steady_clock::now() + deadline;
    char buf[4096];
    for (;;) {
      if (auto code = child_.try_wait()) return *code;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
      INFO("waiting for attach to end; terminal: " << screen_);
      REQUIRE(left.count() > 0);
      pollfd pf{master_.get(), static_cast<short>(drain ? POLLIN : 0), 0};
      int r = ::poll(&pf, 1, static_cast<int>(std::min<long long>(left.count(), 100)));
      if (r > 0 && drain) {
        ssize_t n = ::read(master_.get(), buf, sizeof buf);
        if (n > 0) screen_.append(buf, static_cast<size_t>(n));
      }
    }
  }
  const std::string& screen() const { return screen_; }

 private:
  avm::Child child_;
  avm::Fd master_;
  std::string screen_;
  std::size_t seen_ = 0;
};

// A private tmux server; killed when this goes. Its configuration is its
// own, never the machine's (~/.tmux.conf, /etc/tmux.conf): a prefix or
// option set there would change what the keys do. assume-paste-time is 0:
// by default tmux takes keys that come within 1 ms of the previous ones for
// a paste and does not run their bindings, and on a fast machine Ctrl+B,
// typed one echo after other keys, comes that soon (the prefix then reached
// the pane as a plain ^B). No person types that fast.
struct Tmux {
  avm::TempDir dir{"avm-tmux"};
  std::string prefix = "TMUX_TMPDIR=" + dir.path().string() + " tmux -f " + (dir.path() / "tmux.conf").string() +
                       " -L avmtest";
  Tmux() {
    avm::write_file_atomic(dir.path() / "tmux.conf", "set -g assume-paste-time 0\n");
    auto r = avm::run({"sh", "-c", prefix + " new-session -d -s agent -x 80 -y 24 cat"});
    REQUIRE(r.exit_code == 0);
  }
  ~Tmux() { avm::run({"sh", "-c", prefix + " kill-server"}); }
  bool alive() { return avm::run({"sh", "-c", prefix + " has-session -t agent"}).exit_code == 0; }
};

// Moves this thread (and the processes it starts) into a network namespace
// of its own, with only a loopback interface, and back when it goes: there
// a server may take a well-known port (sshd on 22) without meeting the
// host's. Needs root, as the tests have in CI.
class PrivateNetwork {
 public:
  PrivateNetwork() : old_(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC)) {
    REQUIRE(old_);
    int rc = ::unshare(CLONE_NEWNET);
    int err = errno;
    INFO("unshare(CLONE_NEWNET) needs root (CAP_SYS_ADMIN): " << std::strerror(err));
    REQUIRE(rc == 0);
    auto r = avm::run({"ip", "link", "set", "lo", "up"});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
  }
  ~PrivateNetwork() { ::setns(old_.get(), CLONE_NEWNET); }
  PrivateNetwork(const PrivateNetwork&) = delete;
  PrivateNetwork& operator=(const PrivateNetwork&) = delete;

 private:
  avm::Fd old_;
};

// A real ssh-agent on a socket under `dir`, holding `key`; SSH_AUTH_SOCK
// points at it while this lives.
struct Agent {
  fs::path sock;
  Server server;
  ScopedEnv env;
  Agent(const fs::path& dir, const fs::path& key)
      : sock(dir / "agent.sock"),
        server({"ssh-agent", "-D", "-a", sock.string()}, "SSH_AUTH_SOCK"),
        env("SSH_AUTH_SOCK", sock.string()) {
    add(key);
  }
  void add(const fs::path& key) {
    auto r = avm::run({"ssh-add", key.string()}, {.env = {"SSH_AUTH_SOCK=" + sock.string()}});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
  }
  void clear() { avm::run({"ssh-add", "-D"}, {.env = {"SSH_AUTH_SOCK=" + sock.string()}}); }
};

}  // namespace

TEST_CASE("attach runs the command and passes output and exit status through", "[attach]") {
  Guest g;
  auto r = run_piped(g.options("echo hello; echo oops >&2"));
  CHECK(r.status == 0);
  CHECK(r.out == "hello\n");
  CHECK(r.err == "oops\n");
  CHECK(run_piped(g.options("exit 7")).status == 7);
  // Input reaches the remote, and its end is passed on as EOF.
  r = run_piped(g.options("cat; echo done"), "line one\nline two\n");
  CHECK(r.status == 0);
  CHECK(r.out == "line one\nline two\ndone\n");
  CHECK(g.sshd->log().find("Accepted publickey for " + me()) != std::string::npos);
}

TEST_CASE("attach carries a lot of data both ways", "[attach]") {
  Guest g;
  std::string big;
  for (int i = 0; i < 5000; ++i) big += "line " + std::to_string(i) + "\n";
  auto r = run_piped(g.options("wc -l; head -c 300000 /dev/zero | tr '\\0' x"), big);
  CHECK(r.status == 0);
  CHECK(r.out.substr(0, 5) == "5000\n");
  CHECK(r.out.size() == 5 + 300000);
}

TEST_CASE("attach logs in with the session key only", "[attach]") {
  Guest g;
  avm::TempDir other;
  generate_session_keys(other.path(), "someone else");
  AttachOptions o = g.options("echo should-not-run");
  o.identity = KeyFiles(other.path()).client_key;
  std::string err = error_of([&] { run_piped(o); });
  CHECK(err.find("refused the session key") != std::string::npos);
  CHECK(g.sshd->log().find("Accepted publickey") == std::string::npos);
}

TEST_CASE("attach refuses a host key that is not the pinned one, before any login", "[attach]") {
  Guest g;
  avm::TempDir other;
  generate_session_keys(other.path(), "impostor");
  AttachOptions o = g.options("echo should-not-run");
  o.pinned_host_key = KeyFiles(other.path()).host_pub;
  std::string err = error_of([&] { run_piped(o); });
  CHECK(err.find("refusing to connect") != std::string::npos);
  CHECK(err.find(key_fingerprint(KeyFiles(g.ssh).host_pub)) != std::string::npos);   // what answered
  CHECK(err.find(key_fingerprint(KeyFiles(other.path()).host_pub)) != std::string::npos);  // what was pinned
  // sshd saw the connection end before any authentication was tried.
  g.sshd->wait_for("[preauth]");
  std::string log = g.sshd->log();
  CHECK(log.find("publickey") == std::string::npos);
  CHECK(log.find("Accepted") == std::string::npos);
  CHECK(log.find("Failed") == std::string::npos);
}

TEST_CASE("attach says when nothing listens on the port", "[attach]") {
  avm::TempDir tmp;
  generate_session_keys(tmp.path(), "x");
  AttachOptions o = attach_options(tmp.path(), free_port());
  o.user = me();
  std::string err = error_of([&] { run_piped(o); });
  CHECK(err.find("cannot connect to 127.0.0.1:" + std::to_string(o.port)) != std::string::npos);
  CHECK(err.find("agent-resume") != std::string::npos);
}

TEST_CASE("attach gives the remote a terminal of the local size and follows resizes", "[attach]") {
  Guest g;
  AttachOptions o =
      g.options("stty size; tty >/dev/null && echo has-a-tty; echo \"term=$TERM.\"; read x; stty size; exit 3");
  const char* term = std::getenv("TERM");
  std::string want_term = term && *term && std::string_view(term) != "dumb" ? term : "xterm-256color";
  PtyRun t(o, 31, 101);
  t.expect("31 101");
  t.expect("has-a-tty");
  t.expect("term=" + want_term + ".");
  t.resize(42, 123);
  t.type("\r");
  t.expect("42 123");
  CHECK(t.wait() == 3);  // and the terminal was restored (else 201)
}

TEST_CASE("attach on tmux: Ctrl+B D detaches and leaves the agent running", "[attach]") {
  // A terminal type every tmux knows, whatever terminal runs the tests.
  ScopedEnv term("TERM", "xterm-256color");
  Guest g;
  Tmux tmux;
  PtyRun t(g.options(tmux.prefix + " attach -t agent"), 24, 80);
  t.expect("[agent]");  // tmux's status line
  t.type("typed-through\r");
  t.expect("typed-through");
  t.type("\x02"
         "d");
  t.expect("[detached");
  CHECK(t.wait() == 0);
  CHECK(tmux.alive());
}

TEST_CASE("a signal ends attach cleanly and restores the terminal", "[attach]") {
  Guest g;
  PtyRun t(g.options("echo ready; read x"), 24, 80);
  t.expect("ready");
  t.signal(SIGTERM);
  CHECK(t.wait() == 128 + SIGTERM);  // not 201: the terminal is as it was
}

TEST_CASE("a signal ends attach even while its terminal does not read", "[attach]") {
  Guest g;
  PtyRun t(g.options("yes"), 24, 80);
  t.expect("y\r\ny");
  // Stop reading: the flood soon blocks attach's writes to the terminal.
  t.signal(SIGTERM);
  CHECK(t.wait(20s, false) == 128 + SIGTERM);
}

TEST_CASE("clone over ssh uses ssh-agent and the user's known_hosts", "[attach][ssh-clone]") {
  Guest g;
  TestRepo origin;
  avm::TempDir home;
  ScopedEnv h("HOME", home.path().string());
  fs::create_directories(home.path() / ".ssh");
  std::string url = "ssh://" + me() + "@127.0.0.1:" + std::to_string(g.port) + origin.path.string();
  fs::path known = home.path() / ".ssh" / "known_hosts";

  // A real ssh-agent holding the session's client key (which sshd accepts).
  fs::path sock = home.path() / "agent.sock";
  Server agent({"ssh-agent", "-D", "-a", sock.string()}, "SSH_AUTH_SOCK");
  auto add = avm::run({"ssh-add", KeyFiles(g.ssh).client_key.string()}, {.env = {"SSH_AUTH_SOCK=" + sock.string()}});
  REQUIRE(add.exit_code == 0);
  ScopedEnv a("SSH_AUTH_SOCK", sock.string());
  avm::TempDir tmp;
  fs::path dest = tmp.path() / "r";

  SECTION("an unknown host key is refused, with its fingerprint") {
    std::string err = error_of([&] { clone_repo(url, "", dest); });
    CHECK(err.find("is not in known_hosts") != std::string::npos);
    CHECK(err.find(key_fingerprint(KeyFiles(g.ssh).host_pub)) != std::string::npos);
    CHECK(err.find("ssh -p " + std::to_string(g.port) + " 127.0.0.1") != std::string::npos);  // the explicit port
    CHECK_FALSE(fs::exists(dest));
    CHECK(g.sshd->log().find("Accepted publickey") == std::string::npos);
  }
  SECTION("a changed host key is refused") {
    avm::TempDir other;
    generate_session_keys(other.path(), "x");
    pin_host_key(other.path(), g.port);
    fs::copy_file(KeyFiles(other.path()).known_hosts, known);
    std::string err = error_of([&] { clone_repo(url, "", dest); });
    CHECK(err.find("differs from the one in " + known.string()) != std::string::npos);
    CHECK_FALSE(fs::exists(dest));
  }
  SECTION("a known host clones with the agent's key") {
    fs::copy_file(KeyFiles(g.ssh).known_hosts, known);
    CloneResult r = clone_repo(url, "dev", dest);
    CHECK(r.commit == origin.c2);
    CHECK(git(dest, {"rev-parse", "HEAD"}) == origin.c2);
    CHECK(g.sshd->log().find("Accepted publickey for " + me()) != std::string::npos);
  }
  SECTION("without an agent, authentication fails clearly") {
    fs::copy_file(KeyFiles(g.ssh).known_hosts, known);
    ScopedEnv none("SSH_AUTH_SOCK", std::nullopt);
    std::string err = error_of([&] { clone_repo(url, "", dest); });
    CHECK(err.find("authentication failed") != std::string::npos);
    CHECK(err.find("ssh-agent") != std::string::npos);
    CHECK_FALSE(fs::exists(dest));
  }
  SECTION("an agent with a key the server refuses fails clearly") {
    fs::copy_file(KeyFiles(g.ssh).known_hosts, known);
    avm::run({"ssh-add", "-D"}, {.env = {"SSH_AUTH_SOCK=" + sock.string()}});
    avm::TempDir other;
    generate_session_keys(other.path(), "stranger");
    REQUIRE(avm::run({"ssh-add", KeyFiles(other.path()).client_key.string()},
                     {.env = {"SSH_AUTH_SOCK=" + sock.string()}})
                .exit_code == 0);
    std::string err = error_of([&] { clone_repo(url, "", dest); });
    CHECK(err.find("authentication failed") != std::string::npos);
    CHECK_FALSE(fs::exists(dest));
  }
}

TEST_CASE("clone over ssh in the scp-like form user@host:path (port 22)", "[attach][ssh-clone]") {
  PrivateNetwork net;  // sshd on 127.0.0.1:22, the form's only port
  Guest g(22);
  TestRepo origin;
  avm::TempDir home;
  ScopedEnv h("HOME", home.path().string());
  fs::create_directories(home.path() / ".ssh");
  const std::string url = me() + "@127.0.0.1:" + origin.path.string();
  REQUIRE(parse_repo_url(url).kind == UrlKind::Ssh);
  REQUIRE(parse_repo_url(url).port == 22);
  fs::path known = home.path() / ".ssh" / "known_hosts";
  Agent agent(home.path(), KeyFiles(g.ssh).client_key);
  avm::TempDir tmp;
  fs::path dest = tmp.path() / "r";

  SECTION("a known host clones with the agent's key") {
    fs::copy_file(KeyFiles(g.ssh).known_hosts, known);  // "127.0.0.1 ssh-ed25519 ...": no [host]:port
    CloneResult r = clone_repo(url, "dev", dest);
    CHECK(r.url == url);
    CHECK(r.commit == origin.c2);
    CHECK(git(dest, {"rev-parse", "HEAD"}) == origin.c2);
    CHECK(git(dest, {"remote", "get-url", "origin"}) == url);
    CHECK(g.sshd->log().find("Accepted publickey for " + me()) != std::string::npos);
  }
  SECTION("an unknown host key is refused, naming known_hosts, before any login") {
    std::string err = error_of([&] { clone_repo(url, "", dest); });
    INFO(err);
    CHECK(err.find("is not in known_hosts") != std::string::npos);
    CHECK(err.find(key_fingerprint(KeyFiles(g.ssh).host_pub)) != std::string::npos);
    CHECK(err.find("ssh 127.0.0.1") != std::string::npos);  // how to record it: no -p for port 22
    CHECK_FALSE(fs::exists(dest));
    CHECK(g.sshd->log().find("Accepted publickey") == std::string::npos);
  }
  SECTION("a key that is not in the agent is refused") {
    fs::copy_file(KeyFiles(g.ssh).known_hosts, known);
    agent.clear();
    avm::TempDir other;
    generate_session_keys(other.path(), "stranger");
    agent.add(KeyFiles(other.path()).client_key);
    std::string err = error_of([&] { clone_repo(url, "", dest); });
    INFO(err);
    CHECK(err.find("authentication failed") != std::string::npos);
    CHECK(err.find("refused every key in ssh-agent") != std::string::npos);
    CHECK_FALSE(fs::exists(dest));
    CHECK(g.sshd->log().find("Accepted publickey") == std::string::npos);
  }
}
