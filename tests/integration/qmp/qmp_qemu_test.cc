// QmpClient against a real qemu-system-x86_64 (microvm, no guest).
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>

#include "qmp/qga_client.h"
#include "qmp/qmp_client.h"
#include "test_peers.h"

using namespace avm::qmp;
using namespace std::chrono_literals;
namespace json = boost::json;
using test::QemuOptions;
using test::Socat;
using test::TestQemu;

TEST_CASE("a fresh QEMU: the greeting names its version, query-status is running", "[qmp][qemu]") {
  TestQemu qemu;
  auto qmp = QmpClient::connect(qemu.qmp(), 10s);
  auto version = avm::run({"qemu-system-x86_64", "--version"}).out;
  const Greeting& g = qmp.greeting();
  std::string dotted = std::to_string(g.major) + "." + std::to_string(g.minor) + "." + std::to_string(g.micro);
  CHECK_THAT(version, Catch::Contains("version " + dotted));
  CHECK_THAT(version, Catch::Contains(g.package));
  auto st = qmp.query_status();
  CHECK(st.status == RunState::Running);
  CHECK(st.status_name == "running");
  CHECK(st.running);
}

TEST_CASE("stop gives STOP and paused: cont gives RESUME and running", "[qmp][qemu]") {
  TestQemu qemu;
  auto qmp = QmpClient::connect(qemu.qmp(), 10s);
  EventCursor before_stop = qmp.cursor();
  qmp.stop();
  auto stop = qmp.wait_event("STOP", before_stop, 10s);
  REQUIRE(stop);
  StopEvent::from(*stop);
  auto paused = qmp.query_status();
  CHECK(paused.status == RunState::Paused);
  CHECK_FALSE(paused.running);

  EventCursor before_cont = qmp.cursor();
  qmp.cont();
  auto resume = qmp.wait_event("RESUME", before_cont, 10s);
  REQUIRE(resume);
  CHECK(resume->seq > stop->seq);
  CHECK(qmp.query_status().status == RunState::Running);
}

TEST_CASE("quit gives SHUTDOWN guest=false host-qmp-quit, then a clean close", "[qmp][qemu]") {
  TestQemu qemu;
  auto qmp = QmpClient::connect(qemu.qmp(), 10s);
  EventCursor before = qmp.cursor();
  qmp.quit();
  auto e = qmp.wait_event("SHUTDOWN", before, 10s);
  REQUIRE(e);
  auto s = ShutdownEvent::from(*e);
  CHECK_FALSE(s.guest);
  CHECK(s.reason == "host-qmp-quit");
  CHECK(qmp.wait_closed(10s));
  CHECK(qmp.closed());
  CHECK_THROWS_AS(qmp.query_status(), ClosedError);
  CHECK_THROWS_AS(qmp.wait_event("RESET", before, 1s), ClosedError);
  CHECK(qemu.wait_exit(10s) == 0);
}

TEST_CASE("system_reset and system_powerdown emit RESET and POWERDOWN", "[qmp][qemu]") {
  TestQemu qemu;
  auto qmp = QmpClient::connect(qemu.qmp(), 10s);
  EventCursor mark = qmp.cursor();
  qmp.system_reset();
  auto reset = qmp.wait_event("RESET", mark, 10s);
  REQUIRE(reset);
  auto r = ResetEvent::from(*reset);
  CHECK_FALSE(r.guest);
  CHECK(r.reason == "host-qmp-system-reset");
  mark = qmp.cursor();
  qmp.system_powerdown();  // nobody in the guest presses back: only the event
  CHECK(qmp.wait_event("POWERDOWN", mark, 10s));
  CHECK(qmp.query_status().running);
}

TEST_CASE("the client's answers agree field for field with a raw socat session", "[qmp][qemu][socat]") {
  TestQemu qemu;
  struct Case {
    std::string command;
    json::object args;
  };
  std::vector<Case> cases = {
      {"query-status", {}},
      {"query-version", {}},
      {"query-name", {}},
      {"query-kvm", {}},
      {"query-chardev", {}},
      {"qom-list", {{"path", "/machine"}}},
      {"qom-get", {{"path", "/machine"}, {"property", "type"}}},
      {"human-monitor-command", {{"command-line", "info version"}}},
      {"query-qmp-schema", {}},
      {"no-such-command", {}},
      {"qom-get", {{"path", "/machine"}}},
  };
  // Our client first (QEMU serves one client at a time), then socat.
  std::vector<json::object> ours;
  json::object our_greeting;
  StatusInfo typed_status;
  VersionInfo typed_version;
  KvmInfo typed_kvm;
  std::vector<ChardevInfo> typed_chardev;
  {
    auto qmp = QmpClient::connect(qemu.qmp(), 10s);
    const Greeting& g = qmp.greeting();
    our_greeting = {{"major", g.major}, {"minor", g.minor}, {"micro", g.micro}, {"package", g.package}};
    for (const auto& c : cases) {
      try {
        ours.push_back({{"return", qmp.execute(c.command, c.args, 10s)}});
      } catch (const CommandError& e) {
        ours.push_back({{"error", {{"class", e.error_class()}, {"desc", e.desc()}}}});
      }
    }
    typed_status = qmp.query_status();
    typed_version = qmp.query_version();
    typed_kvm = qmp.query_kvm();
    typed_chardev = qmp.query_chardev();
  }
  Socat socat(qemu.qmp());
  json::value greeting = socat.read();
  const auto& gv = greeting.at("QMP").at("version");
  CHECK(our_greeting.at("major") == gv.at("qemu").at("major"));
  CHECK(our_greeting.at("minor") == gv.at("qemu").at("minor"));
  CHECK(our_greeting.at("micro") == gv.at("qemu").at("micro"));
  CHECK(our_greeting.at("package") == gv.at("package"));
  socat.call("qmp_capabilities", {}, 1);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    INFO(cases[i].command << " " << json::serialize(cases[i].args));
    json::object raw = socat.call(cases[i].command, cases[i].args, static_cast<int>(i) + 100);
    raw.erase("id");
    CHECK(raw == ours[i]);
  }
  // The typed structs carry the same fields.
  json::object st = socat.call("query-status", {}, 200).at("return").as_object();
  CHECK(typed_status.status_name == st.at("status").as_string());
  CHECK(typed_status.running == st.at("running").as_bool());
  CHECK(typed_status.singlestep == st.at("singlestep").as_bool());
  json::object ver = socat.call("query-version", {}, 201).at("return").as_object();
  CHECK(typed_version.major == ver.at("qemu").at("major").as_int64());
  CHECK(typed_version.minor == ver.at("qemu").at("minor").as_int64());
  CHECK(typed_version.micro == ver.at("qemu").at("micro").as_int64());
  CHECK(typed_version.package == ver.at("package").as_string());
  json::object kvm = socat.call("query-kvm", {}, 202).at("return").as_object();
  CHECK(typed_kvm.enabled == kvm.at("enabled").as_bool());
  CHECK(typed_kvm.present == kvm.at("present").as_bool());
  json::array chardev = socat.call("query-chardev", {}, 203).at("return").as_array();
  REQUIRE(typed_chardev.size() == chardev.size());
  for (std::size_t i = 0; i < chardev.size(); ++i) {
    CHECK(typed_chardev[i].label == chardev[i].at("label").as_string());
    CHECK(typed_chardev[i].filename == chardev[i].at("filename").as_string());
    CHECK(typed_chardev[i].frontend_open == chardev[i].at("frontend-open").as_bool());
  }
}

TEST_CASE("a second client gets no greeting while the first holds the monitor", "[qmp][qemu]") {
  TestQemu qemu;
  auto first = QmpClient::connect(qemu.qmp(), 10s);
  try {
    QmpClient::connect(qemu.qmp(), 500ms);
    FAIL("the second client should time out");
  } catch (const TimeoutError& e) {
    CHECK_THAT(e.hint(), Catch::Contains("one QMP client per socket"));
  }
  CHECK(first.query_status().running);
}

TEST_CASE("events reach every monitor: each client buffers its own", "[qmp][qemu]") {
  TestQemu qemu({.qmp_sockets = 2});
  auto a = QmpClient::connect(qemu.qmp(0), 10s);
  auto b = QmpClient::connect(qemu.qmp(1), 10s);
  EventCursor mark_b = b.cursor();
  a.stop();
  a.cont();
  // b was not reading while a acted; the events wait in its buffer.
  auto stop = b.wait_event("STOP", mark_b, 10s);
  REQUIRE(stop);
  REQUIRE(b.wait_event("RESUME", stop->seq, 10s));
}

TEST_CASE("QEMU killed under the client: the close is seen, commands fail closed", "[qmp][qemu]") {
  TestQemu qemu;
  auto qmp = QmpClient::connect(qemu.qmp(), 10s);
  qemu.kill(SIGKILL);
  CHECK(qmp.wait_closed(10s));
  CHECK_THROWS_AS(qmp.query_status(), ClosedError);
  CHECK(qemu.wait_exit(10s) == 128 + SIGKILL);
}

namespace {

// A TCP port nobody listens on right now (the kernel's pick).
int free_port() {
  avm::Fd fd(::socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  return ntohs(addr.sin_port);
}

bool can_connect(int port) {
  avm::Fd fd(::socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  return ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
}

}  // namespace

TEST_CASE("hostfwd_add and hostfwd_remove on a user-mode netdev", "[qmp][qemu]") {
  TestQemu qemu({.extra = {"-netdev", "user,id=net0"}});
  auto qmp = QmpClient::connect(qemu.qmp(), 10s);
  int port = free_port();
  std::string rule = "tcp:127.0.0.1:" + std::to_string(port) + "-:22";
  CHECK_FALSE(can_connect(port));
  qmp.hostfwd_add("net0", rule);
  CHECK(can_connect(port));  // slirp listens on the host side
  try {
    qmp.hostfwd_add("net0", rule);
    FAIL("the same forward twice should fail");
  } catch (const CommandError& e) {
    CHECK(e.command() == "hostfwd_add");
    CHECK_THAT(e.desc(), Catch::Contains("host forwarding rule"));
  }
  qmp.hostfwd_remove("net0", "tcp:127.0.0.1:" + std::to_string(port));
  CHECK_FALSE(can_connect(port));
  try {
    qmp.hostfwd_remove("net0", "tcp:127.0.0.1:" + std::to_string(port));
    FAIL("removing it twice should fail");
  } catch (const CommandError& e) {
    CHECK_THAT(e.desc(), Catch::Contains("not found"));
  }
  CHECK_THROWS_AS(qmp.hostfwd_add("nonet", rule), CommandError);
}

TEST_CASE("query-qmp-schema from the real QEMU parses whole", "[qmp][qemu]") {
  TestQemu qemu;
  auto qmp = QmpClient::connect(qemu.qmp(), 10s);
  json::array schema = qmp.query_qmp_schema(30s);
  CHECK(json::serialize(schema).size() > 100 * 1024);
  bool found = false;
  for (const auto& e : schema) found = found || e.at("name") == "query-status";
  CHECK(found);
}

TEST_CASE("a guest agent port with no guest behind it: sync times out naming the agent", "[qga][qemu]") {
  TestQemu qemu({.guest_agent_port = true});
  auto qga = QgaClient::connect(qemu.qga(), 10s);  // QEMU accepts; nobody answers
  try {
    qga.sync(1500ms);
    FAIL("sync should time out: there is no guest");
  } catch (const TimeoutError& e) {
    CHECK_THAT(e.what(), Catch::Contains("guest-sync-delimited"));
    CHECK_THAT(e.hint(), Catch::Contains("qemu-guest-agent"));
  }
  CHECK_THROWS_AS(qga.ping(500ms), TimeoutError);
}
