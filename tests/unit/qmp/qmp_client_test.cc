#include "qmp/qmp_client.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <boost/json/serialize.hpp>
#include <cstring>
#include <thread>
#include <catch2/catch.hpp>

#include "fake_server.h"
#include "transcript.h"
#include "util/fd.h"
#include "util/temp_dir.h"

using namespace avm::qmp;
using namespace std::chrono_literals;
namespace json = boost::json;
using test::FakeConn;
using test::FakeServer;
using test::Transcript;

namespace {

// Greeting and capabilities, as QEMU does them.
void handshake(FakeConn& c) {
  c.greeting();
  c.reply(c.expect("qmp_capabilities"), json::object{});
}

// Runs the whole recorded session against the client, checking every
// typed answer against the recording.
void run_recorded_session(const test::ReplayOptions& opts) {
  auto t = Transcript::load("qmp-session.txt");
  FakeServer server([&](FakeConn& c) { test::replay(c, t, opts); });
  auto qmp = QmpClient::connect(server.socket(), 5s);
  CHECK(qmp.greeting().major == 7);
  CHECK(qmp.greeting().minor == 2);
  CHECK(qmp.greeting().micro == 22);
  CHECK(qmp.greeting().package == "Debian 1:7.2+dfsg-7+deb12u18+b3");
  CHECK(qmp.greeting().capabilities == std::vector<std::string>{"oob"});

  auto st = qmp.query_status();
  CHECK(st.status == RunState::Running);
  CHECK(st.running);
  CHECK(st.status_name == "running");

  auto v = qmp.query_version();
  CHECK((v.major == 7 && v.minor == 2 && v.micro == 22));
  CHECK_FALSE(qmp.query_name().name.has_value());
  auto kvm = qmp.query_kvm();
  CHECK_FALSE(kvm.enabled);
  CHECK(kvm.present);

  // STOP arrives before stop's reply: a cursor taken before still sees it.
  EventCursor before_stop = qmp.cursor();
  qmp.stop();
  auto stop_ev = qmp.wait_event("STOP", before_stop, 0ms);
  REQUIRE(stop_ev);
  CHECK(stop_ev->ts_seconds > 0);
  CHECK(qmp.query_status().status == RunState::Paused);

  EventCursor before_cont = qmp.cursor();
  qmp.cont();
  CHECK(qmp.wait_event("RESUME", before_cont, 0ms));
  CHECK_FALSE(qmp.wait_event("STOP", before_cont, 0ms));

  EventCursor before_reset = qmp.cursor();
  qmp.system_reset();
  auto reset = qmp.wait_event("RESET", before_reset, 1s);
  REQUIRE(reset);
  auto r = ResetEvent::from(*reset);
  CHECK_FALSE(r.guest);
  CHECK(r.reason == "host-qmp-system-reset");

  EventCursor before_pd = qmp.cursor();
  qmp.system_powerdown();
  CHECK(qmp.wait_event("POWERDOWN", before_pd, 1s));

  auto props = qmp.qom_list("/machine");
  REQUIRE(props.size() > 10);
  CHECK(props[0].name == "type");
  CHECK(props[0].type == "string");
  CHECK(qmp.qom_get("/machine", "type") == "microvm-machine");

  auto chardevs = qmp.query_chardev();
  REQUIRE(chardevs.size() == 1);
  CHECK(chardevs[0].label == "compat_monitor0");
  CHECK(chardevs[0].frontend_open);

  try {
    qmp.device_add({"virtio-serial-device", "vs0", {}, {}});
    FAIL("device_add should fail on microvm");
  } catch (const CommandError& e) {
    CHECK(e.command() == "device_add");
    CHECK(e.error_class() == "GenericError");
    CHECK_THAT(e.desc(), Catch::Contains("does not support hotplugging"));
  }
  try {
    qmp.device_del("nope");
    FAIL("device_del of a missing device should fail");
  } catch (const CommandError& e) {
    CHECK(e.error_class() == "DeviceNotFound");
    CHECK(e.desc() == "Device 'nope' not found");
  }
  CHECK_THAT(qmp.human_monitor_command("info version"), Catch::StartsWith("7.2.22"));
  try {
    qmp.hostfwd_add("", "tcp::2222-:22");
    FAIL("hostfwd_add without a user netdev should fail");
  } catch (const CommandError& e) {
    CHECK(e.command() == "hostfwd_add");
    CHECK(e.desc() == "user mode network stack not in use");
  }
  try {
    qmp.execute("no-such-command");
    FAIL("an unknown command should fail");
  } catch (const CommandError& e) {
    CHECK(e.error_class() == "CommandNotFound");
    CHECK_THAT(e.what(), Catch::Contains("no-such-command"));
  }
  CHECK_THROWS_AS(qmp.execute("qom-get", json::object{{"path", "/machine"}}), CommandError);

  EventCursor before_quit = qmp.cursor();
  qmp.quit();
  auto shutdown = qmp.wait_event("SHUTDOWN", before_quit, 5s);
  REQUIRE(shutdown);
  auto s = ShutdownEvent::from(*shutdown);
  CHECK_FALSE(s.guest);
  CHECK(s.reason == "host-qmp-quit");
  CHECK(qmp.wait_closed(5s));
  CHECK_THROWS_AS(qmp.query_status(), ClosedError);
  CHECK(server.finish() == "");
}

}  // namespace

TEST_CASE("a recorded QEMU session replays through every typed command", "[qmp_client]") {
  run_recorded_session({});
}

TEST_CASE("replies and events merged into single writes", "[qmp_client]") {
  run_recorded_session({.merge = true});
}

TEST_CASE("every message split across many reads", "[qmp_client]") {
  run_recorded_session({.split = 7});
}

TEST_CASE("query-qmp-schema: the recorded 200 KiB reply in 1000-byte pieces", "[qmp_client]") {
  auto t = Transcript::load("qmp-schema.txt");
  FakeServer server([&](FakeConn& c) { test::replay(c, t, {.split = 1000, .stop_after_requests = 2}); });
  auto qmp = QmpClient::connect(server.socket(), 5s);
  json::array schema = qmp.query_qmp_schema(30s);
  CHECK(json::value(schema) == t.reply_to("query-qmp-schema").at("return"));
  CHECK(server.finish() == "");
}

TEST_CASE("a 1 MiB+ reply is read whole", "[qmp_client]") {
  std::string big(1536 * 1024, 'x');
  FakeServer server([&](FakeConn& c) {
    handshake(c);
    c.reply(c.expect("qom-get"), json::string(big));
  });
  auto qmp = QmpClient::connect(server.socket(), 5s);
  CHECK(qmp.qom_get("/machine", "blob").as_string().size() == big.size());
  CHECK(server.finish() == "");
}

TEST_CASE("events interleaved with replies are all buffered, in order", "[qmp_client]") {
  FakeServer server([&](FakeConn& c) {
    handshake(c);
    c.event("RESET", {{"guest", true}, {"reason", "guest-reset"}});
    auto req = c.expect("query-status");
    c.event("STOP");
    c.event("DEVICE_DELETED", {{"device", "net0"}, {"path", "/machine/peripheral/net0"}});
    c.reply(req, json::object{{"status", "paused"}, {"singlestep", false}, {"running", false}});
    c.event("GUEST_PANICKED", {{"action", "pause"}});
    c.event("RESUME");
    c.event("SOME_FUTURE_EVENT", {{"x", 1}});
    c.hold();
  });
  auto qmp = QmpClient::connect(server.socket(), 5s);
  EventCursor start = 0;
  CHECK(qmp.query_status().status == RunState::Paused);
  // The RESET came before the command was even sent.
  auto reset = qmp.wait_event("RESET", start, 0ms);
  REQUIRE(reset);
  CHECK(ResetEvent::from(*reset).guest);
  auto dd = qmp.wait_event("DEVICE_DELETED", start, 0ms);
  REQUIRE(dd);
  CHECK(DeviceDeletedEvent::from(*dd).device == "net0");
  auto panic = qmp.wait_event("GUEST_PANICKED", start, 5s);
  REQUIRE(panic);
  CHECK(GuestPanickedEvent::from(*panic).action == "pause");
  CHECK(qmp.wait_event("SOME_FUTURE_EVENT", start, 5s));
  auto all = qmp.events_since(start);
  REQUIRE(all.size() == 6);
  std::vector<std::string> names;
  for (std::size_t i = 0; i < all.size(); ++i) {
    names.push_back(all[i].name);
    CHECK(all[i].seq == i + 1);
  }
  CHECK(names == std::vector<std::string>{"RESET", "STOP", "DEVICE_DELETED", "GUEST_PANICKED", "RESUME",
                                          "SOME_FUTURE_EVENT"});
  // A predicate filters; a cursor hides what came before it.
  CHECK_FALSE(qmp.wait_event("RESET", start, 0ms, [](const Event& e) { return !e.data.at("guest").as_bool(); }));
  CHECK_FALSE(qmp.wait_event("STOP", all[1].seq, 0ms));
  CHECK(qmp.wait_event("", all[4].seq, 0ms)->name == "SOME_FUTURE_EVENT");
}

TEST_CASE("wait_event times out with nullopt when nothing comes", "[qmp_client]") {
  FakeServer server([&](FakeConn& c) {
    handshake(c);
    c.hold();
  });
  auto qmp = QmpClient::connect(server.socket(), 5s);
  CHECK_FALSE(qmp.wait_event("SHUTDOWN", qmp.cursor(), 50ms));
  CHECK_FALSE(qmp.wait_closed(10ms));
}

TEST_CASE("a late reply to a command that timed out is never paired with the next", "[qmp_client]") {
  FakeServer server([&](FakeConn& c) {
    handshake(c);
    auto slow = c.expect("query-name");  // not answered in time
    auto next = c.expect("query-status");
    c.reply(slow, json::object{{"name", "late"}});
    c.reply(next, json::object{{"status", "running"}, {"singlestep", false}, {"running", true}});
    c.hold();
  });
  auto qmp = QmpClient::connect(server.socket(), 5s);
  CHECK_THROWS_AS(qmp.query_name(100ms), TimeoutError);
  CHECK(qmp.query_status().status == RunState::Running);
}

TEST_CASE("an error reply is a CommandError naming the command", "[qmp_client]") {
  FakeServer server([&](FakeConn& c) {
    handshake(c);
    c.error_reply(c.expect("cont"), "GenericError", "Resetting the Virtual Machine is required");
    c.hold();
  });
  auto qmp = QmpClient::connect(server.socket(), 5s);
  try {
    qmp.cont();
    FAIL("cont should fail");
  } catch (const CommandError& e) {
    CHECK(e.command() == "cont");
    CHECK(e.error_class() == "GenericError");
    CHECK(std::string(e.what()) == "cont: QEMU replied with error GenericError: Resetting the Virtual Machine is required");
  }
}

TEST_CASE("a reply missing a field names the command and the field", "[qmp_client]") {
  FakeServer server([&](FakeConn& c) {
    handshake(c);
    c.reply(c.expect("query-status"), json::object{{"running", true}});
    c.reply(c.expect("query-kvm"), json::object{{"enabled", "yes"}, {"present", true}});
    c.hold();
  });
  auto qmp = QmpClient::connect(server.socket(), 5s);
  CHECK_THROWS_WITH(qmp.query_status(), "query-status: reply has no 'status'");
  CHECK_THROWS_WITH(qmp.query_kvm(), "query-kvm: reply: 'enabled' is a string, not a boolean");
}

TEST_CASE("disconnect mid-command is a ClosedError", "[qmp_client]") {
  SECTION("no reply at all") {
    FakeServer server([&](FakeConn& c) {
      handshake(c);
      c.expect("query-status");
      c.close();
    });
    auto qmp = QmpClient::connect(server.socket(), 5s);
    CHECK_THROWS_AS(qmp.query_status(), ClosedError);
    CHECK(qmp.closed());
    CHECK(server.finish() == "");
  }
  SECTION("half a reply") {
    FakeServer server([&](FakeConn& c) {
      handshake(c);
      c.expect("query-status");
      c.send("{\"return\": {\"status\": \"runn");
      c.wait_drained();
      c.close();
    });
    auto qmp = QmpClient::connect(server.socket(), 5s);
    CHECK_THROWS_WITH(qmp.query_status(), Catch::Contains("in the middle of a message"));
    CHECK(server.finish() == "");
  }
  SECTION("an event that came before the close is still seen") {
    FakeServer server([&](FakeConn& c) {
      handshake(c);
      c.event("SHUTDOWN", {{"guest", true}, {"reason", "guest-shutdown"}});
      c.close();
    });
    auto qmp = QmpClient::connect(server.socket(), 5s);
    EventCursor from = 0;
    CHECK(qmp.wait_closed(5s));
    auto e = qmp.wait_event("SHUTDOWN", from, 1s);
    REQUIRE(e);
    CHECK(ShutdownEvent::from(*e).guest);
    CHECK_THROWS_AS(qmp.wait_event("RESET", from, 1s), ClosedError);
  }
}

TEST_CASE("quit succeeds whether the reply or the close comes first", "[qmp_client]") {
  SECTION("reply, event, close") {
    FakeServer server([&](FakeConn& c) {
      handshake(c);
      auto q = c.expect("quit");
      c.reply(q, json::object{});
      c.event("SHUTDOWN", {{"guest", false}, {"reason", "host-qmp-quit"}});
      c.close();
    });
    auto qmp = QmpClient::connect(server.socket(), 5s);
    auto mark = qmp.cursor();
    qmp.quit();
    CHECK(qmp.wait_event("SHUTDOWN", mark, 5s));
    CHECK(qmp.wait_closed(5s));
  }
  SECTION("event, close, no reply") {
    FakeServer server([&](FakeConn& c) {
      handshake(c);
      c.expect("quit");
      c.event("SHUTDOWN", {{"guest", false}, {"reason", "host-qmp-quit"}});
      c.close();
    });
    auto qmp = QmpClient::connect(server.socket(), 5s);
    auto mark = qmp.cursor();
    qmp.quit();
    auto e = qmp.wait_event("SHUTDOWN", mark, 5s);
    REQUIRE(e);
    CHECK(ShutdownEvent::from(*e).reason == "host-qmp-quit");
    CHECK(qmp.wait_closed(0ms));
  }
}

TEST_CASE("garbage on the socket is a ProtocolError, never a hang", "[qmp_client]") {
  SECTION("instead of a reply") {
    FakeServer server([&](FakeConn& c) {
      handshake(c);
      c.expect("query-status");
      c.event("STOP");
      c.send(std::string("\x00\x01garbage\r\n", 11));
      c.hold();
    });
    auto qmp = QmpClient::connect(server.socket(), 5s);
    CHECK_THROWS_WITH(qmp.query_status(), Catch::Contains("malformed data") && Catch::Contains("\\x00\\x01garbage"));
    // The event before the garbage was kept; the connection is not used again.
    CHECK(qmp.events_since(0).size() == 1);
    CHECK_THROWS_AS(qmp.query_status(), ProtocolError);
    CHECK_THROWS_AS(qmp.wait_event("RESUME", 0, 1s), ProtocolError);
  }
  SECTION("a JSON message of no known shape") {
    FakeServer server([&](FakeConn& c) {
      handshake(c);
      c.expect("query-status");
      c.send("{\"surprise\": true}\r\n");
      c.hold();
    });
    auto qmp = QmpClient::connect(server.socket(), 5s);
    CHECK_THROWS_WITH(qmp.query_status(), Catch::Contains("unexpected message"));
  }
  SECTION("not a QMP socket at all") {
    FakeServer server([&](FakeConn& c) {
      c.send("SSH-2.0-OpenSSH_9.2p1\r\n");
      c.hold();
    });
    CHECK_THROWS_AS(QmpClient::connect(server.socket(), 5s), ProtocolError);
  }
}

TEST_CASE("a greeting that never comes is a timeout naming the likely cause", "[qmp_client]") {
  FakeServer server([&](FakeConn& c) { c.hold(); });
  try {
    QmpClient::connect(server.socket(), 200ms);
    FAIL("connect should time out");
  } catch (const TimeoutError& e) {
    CHECK_THAT(e.what(), Catch::Contains("the QMP greeting"));
    CHECK_THAT(e.hint(), Catch::Contains("one QMP client per socket"));
  }
}

TEST_CASE("connecting to no socket, or a dead one, names the fix", "[qmp_client]") {
  avm::TempDir dir("agent-vm-qmp-test");
  try {
    QmpClient::connect(dir.path() / "qmp.sock", 1s);
    FAIL("connect should fail");
  } catch (const ConnectError& e) {
    CHECK_THAT(e.what(), Catch::Contains("qmp.sock"));
    CHECK_THAT(e.hint(), Catch::Contains("is the VM running"));
  }
  // A socket file nobody listens on: what a crashed QEMU leaves behind.
  auto stale = dir.path() / "stale.sock";
  {
    avm::Fd fd(::socket(AF_UNIX, SOCK_STREAM, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, stale.c_str(), sizeof addr.sun_path - 1);
    REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  }
  try {
    QmpClient::connect(stale, 1s);
    FAIL("connect should fail");
  } catch (const ConnectError& e) {
    CHECK_THAT(e.what(), Catch::Contains("nothing listens"));
    CHECK_THAT(e.hint(), Catch::Contains("stale socket"));
  }
}

TEST_CASE("events sent before QEMU went away are kept when a command finds it gone", "[qmp_client]") {
  FakeServer server([&](FakeConn& c) {
    handshake(c);
    c.event("SHUTDOWN", {{"guest", true}, {"reason", "guest-shutdown"}});
    c.close();
  });
  auto qmp = QmpClient::connect(server.socket(), 5s);
  REQUIRE(server.finish() == "");  // the peer is gone before we send
  CHECK_THROWS_AS(qmp.query_status(), ClosedError);
  auto e = qmp.wait_event("SHUTDOWN", 0, 1s);
  REQUIRE(e);
  CHECK(ShutdownEvent::from(*e).guest);
}

TEST_CASE("twenty clients on twenty threads, one per VM, as agent-list does", "[qmp_client]") {
  constexpr int kVms = 20;
  std::vector<std::unique_ptr<FakeServer>> servers;
  for (int i = 0; i < kVms; ++i)
    servers.push_back(std::make_unique<FakeServer>([i](FakeConn& c) {
      handshake(c);
      if (i % 5 == 4) c.hold();  // a hung VM: its client times out alone
      c.reply(c.expect("query-status"),
              json::object{{"status", i % 2 ? "paused" : "running"}, {"singlestep", false}, {"running", i % 2 == 0}});
      c.hold();
    }));
  std::vector<std::string> results(kVms);
  std::vector<std::thread> threads;
  for (int i = 0; i < kVms; ++i)
    threads.emplace_back([&, i] {
      try {
        auto qmp = QmpClient::connect(servers[static_cast<std::size_t>(i)]->socket(), 5s);
        results[static_cast<std::size_t>(i)] = qmp.query_status(300ms).status_name;
      } catch (const TimeoutError&) {
        results[static_cast<std::size_t>(i)] = "timeout";
      } catch (const std::exception& e) {
        results[static_cast<std::size_t>(i)] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  for (int i = 0; i < kVms; ++i) {
    INFO("vm " << i);
    if (i % 5 == 4) CHECK(results[static_cast<std::size_t>(i)] == "timeout");
    else CHECK(results[static_cast<std::size_t>(i)] == (i % 2 ? "paused" : "running"));
  }
}

TEST_CASE("commands sent ahead go with the capabilities and are answered from their replies", "[qmp_client]") {
  FakeServer server([&](FakeConn& c) {
    c.greeting();
    // All three arrive before any reply is sent: one write, one wake-up.
    auto caps = c.expect("qmp_capabilities", 2s);
    auto status = c.expect("query-status", 2s);
    auto chardev = c.expect("query-chardev", 2s);
    c.reply(caps, json::object{});
    // QEMU answers in order; the client takes them in any order.
    c.reply(chardev, json::array{json::object{{"label", "agent"}, {"filename", "file:x"}, {"frontend-open", true}}});
    c.reply(status, json::object{{"status", "running"}, {"singlestep", false}, {"running", true}});
    // The answered commands are not asked again: the next request is a new one.
    c.reply(c.expect("query-status"), json::object{{"status", "paused"}, {"singlestep", false}, {"running", false}});
    c.hold();
  });
  auto qmp = QmpClient::connect(server.socket(), 5s, {"query-status", "query-chardev"});
  auto ports = qmp.query_chardev();
  REQUIRE(ports.size() == 1);
  CHECK(ports[0].label == "agent");
  CHECK(ports[0].frontend_open);
  CHECK(qmp.query_status().status_name == "running");
  CHECK(qmp.query_status().status_name == "paused");  // asked now, answered now
}

TEST_CASE("a command sent ahead that QEMU refused throws at its call, naming it", "[qmp_client]") {
  FakeServer server([&](FakeConn& c) {
    c.greeting();
    auto caps = c.expect("qmp_capabilities", 2s);
    auto chardev = c.expect("query-chardev", 2s);
    c.reply(caps, json::object{});
    c.error_reply(chardev, "GenericError", "no chardevs here");
    c.hold();
  });
  auto qmp = QmpClient::connect(server.socket(), 5s, {"query-chardev"});
  CHECK_THROWS_WITH(qmp.query_chardev(), "query-chardev: QEMU replied with error GenericError: no chardevs here");
}

TEST_CASE("a reply sent ahead that never comes makes connect a timeout naming it", "[qmp_client]") {
  FakeServer server([&](FakeConn& c) {
    c.greeting();
    auto caps = c.expect("qmp_capabilities", 2s);
    c.expect("query-status", 2s);
    c.reply(caps, json::object{});
    c.hold();
  });
  try {
    QmpClient::connect(server.socket(), 300ms, {"query-status"});
    FAIL("connect should time out");
  } catch (const TimeoutError& e) {
    CHECK(std::string(e.what()).find("the reply to 'query-status'") != std::string::npos);
  }
}
