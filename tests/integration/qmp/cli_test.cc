// agent-vm qmp / agent-vm qga against real QEMU and qemu-ga.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <catch2/catch.hpp>

#include "qmp/qmp_client.h"
#include "test_peers.h"
#include "util/process.h"

using namespace avm::qmp;
using namespace std::chrono_literals;
namespace json = boost::json;
using test::HostAgent;
using test::QemuOptions;
using test::TestQemu;

namespace {

avm::RunResult agent_vm(std::vector<std::string> args) {
  args.insert(args.begin(), AGENT_VM_TEST_BIN);
  avm::RunOptions o;
  o.timeout = 60s;
  return avm::run(args, o);
}

// Reads lines from `fd` until `n` lines arrived (deadline 10 s).
std::vector<std::string> read_lines(int fd, std::size_t n, std::string& buf) {
  std::vector<std::string> lines;
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (lines.size() < n) {
    auto nl = buf.find('\n');
    if (nl != std::string::npos) {
      lines.push_back(buf.substr(0, nl));
      buf.erase(0, nl + 1);
      continue;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    REQUIRE(left.count() > 0);
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char chunk[4096];
    ssize_t r = ::read(fd, chunk, sizeof chunk);
    REQUIRE(r > 0);
    buf.append(chunk, static_cast<std::size_t>(r));
  }
  return lines;
}

}  // namespace

TEST_CASE("agent-vm qmp prints the reply as JSON, pretty or compact", "[cli][qemu]") {
  TestQemu qemu;
  auto pretty = agent_vm({"qmp", qemu.qmp().string(), "query-status"});
  INFO(pretty.err);
  REQUIRE(pretty.exit_code == 0);
  CHECK(json::parse(pretty.out) == json::parse(R"({"status": "running", "singlestep": false, "running": true})"));
  CHECK(pretty.out.find("\n  \"status\"") != std::string::npos);
  auto compact = agent_vm({"qmp", qemu.qmp().string(), "qom-get", R"({"path": "/machine", "property": "type"})", "-c"});
  REQUIRE(compact.exit_code == 0);
  CHECK(compact.out == "\"microvm-machine\"\n");
}

TEST_CASE("agent-vm qmp exits 1 on an error reply and prints it", "[cli][qemu]") {
  TestQemu qemu;
  auto r = agent_vm({"qmp", qemu.qmp().string(), "no-such-command"});
  CHECK(r.exit_code == 1);
  CHECK(r.out.empty());
  CHECK_THAT(r.err, Catch::Contains("CommandNotFound") && Catch::Contains("no-such-command"));
  auto bad = agent_vm({"qmp", qemu.qmp().string(), "qom-get", "{not json"});
  CHECK(bad.exit_code == 1);
  CHECK_THAT(bad.err, Catch::Contains("must be a JSON object"));
  auto none = agent_vm({"qmp", "/nonexistent/qmp.sock", "query-status"});
  CHECK(none.exit_code == 1);
  CHECK_THAT(none.err, Catch::Contains("is the VM running"));
}

namespace {

// `agent-vm qmp <monitor 1> --events`, with its stdout and stderr piped.
struct Streamer {
  avm::Fd out, err;
  avm::Child child;
  std::string out_buf, err_buf;

  explicit Streamer(const std::filesystem::path& socket) {
    int o[2], e[2];
    REQUIRE(::pipe2(o, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(e, O_CLOEXEC) == 0);
    out = avm::Fd(o[0]);
    err = avm::Fd(e[0]);
    avm::Fd out_w(o[1]), err_w(e[1]);
    avm::SpawnOptions so;
    so.stdout_fd = out_w.get();
    so.stderr_fd = err_w.get();
    child = avm::spawn({AGENT_VM_TEST_BIN, "qmp", socket.string(), "--events"}, so);
    // It says on stderr when QEMU has negotiated with it: from then on,
    // every event reaches it.
    auto ready = read_lines(err.get(), 1, err_buf);
    REQUIRE_THAT(ready[0], Catch::Contains("streaming events"));
  }
  int exit_code() {
    REQUIRE(avm::wait_for_exit(child.pid(), 10s));
    return child.wait();
  }
};

}  // namespace

TEST_CASE("agent-vm qmp --events streams events as JSON lines until QEMU closes", "[cli][qemu]") {
  TestQemu qemu({.qmp_sockets = 2});
  Streamer streamer(qemu.qmp(1));
  auto qmp = QmpClient::connect(qemu.qmp(0), 10s);
  qmp.stop();
  qmp.cont();
  qmp.quit();
  auto lines = read_lines(streamer.out.get(), 3, streamer.out_buf);
  std::vector<std::string> names;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    json::value v = json::parse(lines[i]);
    names.emplace_back(v.at("event").as_string());
    CHECK(v.at("seq") == i + 1);
    CHECK(v.at("timestamp").at("seconds").as_int64() > 0);
  }
  CHECK(names == std::vector<std::string>{"STOP", "RESUME", "SHUTDOWN"});
  CHECK(json::parse(lines[2]).at("data").at("reason") == "host-qmp-quit");
  CHECK(streamer.exit_code() == 0);
  CHECK(qemu.wait_exit(10s) == 0);
}

TEST_CASE("agent-vm qmp --events stops on SIGINT with 130", "[cli][qemu]") {
  TestQemu qemu({.qmp_sockets = 2});
  Streamer streamer(qemu.qmp(1));
  auto qmp = QmpClient::connect(qemu.qmp(0), 10s);
  qmp.system_reset();
  auto lines = read_lines(streamer.out.get(), 1, streamer.out_buf);
  CHECK(json::parse(lines[0]).at("event") == "RESET");
  streamer.child.kill(SIGINT);
  CHECK(streamer.exit_code() == 130);
  CHECK(qmp.query_status().running);  // QEMU is untouched
}

TEST_CASE("agent-vm qga talks to a real agent", "[cli][qemu-ga]") {
  HostAgent agent;
  auto ping = agent_vm({"qga", agent.socket().string(), "guest-ping", "-c"});
  INFO(ping.err);
  CHECK(ping.exit_code == 0);
  CHECK(ping.out == "{}\n");
  auto exec = agent_vm({"qga", agent.socket().string(), "guest-exec",
                        R"({"path": "true", "capture-output": true})", "-c"});
  CHECK(exec.exit_code == 0);
  CHECK(json::parse(exec.out).at("pid").as_int64() > 0);
  auto refused = agent_vm({"qga", agent.socket().string(), "guest-shutdown"});
  CHECK(refused.exit_code == 1);
  CHECK_THAT(refused.err, Catch::Contains("disabled"));
}

TEST_CASE("agent-vm qga gives up on an agent that never answers", "[cli][qemu]") {
  TestQemu qemu({.guest_agent_port = true});
  auto r = agent_vm({"qga", qemu.qga().string(), "guest-ping", "--timeout", "1000"});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("timed out") && Catch::Contains("qemu-guest-agent"));
}
