#include "qmp/qga_client.h"

#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>

#include "fake_server.h"
#include "transcript.h"

using namespace avm::qmp;
using namespace std::chrono_literals;
namespace json = boost::json;
using test::FakeConn;
using test::FakeServer;
using test::Transcript;

namespace {

// What qemu-ga sends for guest-sync-delimited: the sentinel, then the reply.
void answer_sync(FakeConn& c, const json::object& req, bool echo_id = true) {
  json::object o{{"return", req.at("arguments").at("id")}};
  if (echo_id) o["id"] = req.at("id");
  std::string frame(1, '\xff');
  frame += json::serialize(o);
  frame += '\n';
  c.send(frame);
}

void sync_up(FakeConn& c) { answer_sync(c, c.expect("guest-sync-delimited")); }

}  // namespace

TEST_CASE("a recorded guest agent session replays through the typed commands", "[qga_client]") {
  auto t = Transcript::load("qga-session.txt");
  FakeServer server([&](FakeConn& c) { test::replay(c, t); });
  auto qga = QgaClient::connect(server.socket(), 5s);
  qga.sync(5s);
  CHECK(qga.synced());
  qga.ping();
  auto info = qga.info();
  CHECK(info.version == "7.2.22");
  CHECK(info.supports("guest-exec"));
  CHECK_FALSE(info.supports("guest-shutdown"));  // blocked when recording
  CHECK_FALSE(info.supports("no-such-command"));
  auto os = qga.osinfo();
  CHECK(os.id == "debian");
  CHECK(os.machine == "x86_64");
  CHECK(qga.get_time() > 1'600'000'000'000'000'000);
  try {
    qga.shutdown("powerdown", 5s);
    FAIL("the recorded agent refuses guest-shutdown");
  } catch (const CommandError& e) {
    CHECK(e.command() == "guest-shutdown");
    CHECK(e.error_class() == "CommandNotFound");
    CHECK_THAT(e.what(), Catch::Contains("guest agent replied"));
  }
  CHECK_THROWS_AS(qga.execute("no-such-command"), CommandError);
  CHECK_THROWS_WITH(qga.exec_status(1), Catch::Contains("Invalid parameter 'pid'"));
  CHECK(server.finish() == "");
}

TEST_CASE("guest-exec: argv, env and input in: exit code and decoded output out", "[qga_client]") {
  auto t = Transcript::load("qga-exec.txt");
  FakeServer server([&](FakeConn& c) { test::replay(c, t); });
  auto qga = QgaClient::connect(server.socket(), 5s);
  auto r = qga.exec({"sh", "-c", "read x; echo out:$x:$GREETING; echo err >&2; exit 3"}, 10s,
                    {"GREETING=hi"}, "hello\n");
  CHECK(r.exit_code == 3);
  CHECK_FALSE(r.signal);
  CHECK(r.out == "out:hello:hi\n");
  CHECK(r.err == "err\n");
  CHECK_FALSE(r.out_truncated);
  CHECK(server.finish() == "");
}

TEST_CASE("guest-exec polls until the process exits and reports a signal", "[qga_client]") {
  FakeServer server([&](FakeConn& c) {
    sync_up(c);
    auto req = c.expect("guest-exec");
    CHECK(req.at("arguments").at("path") == "sleep");
    CHECK(req.at("arguments").at("capture-output") == true);
    c.reply(req, json::object{{"pid", 77}}, "\n");
    c.reply(c.expect("guest-exec-status"), json::object{{"exited", false}}, "\n");
    c.reply(c.expect("guest-exec-status"), json::object{{"exited", false}}, "\n");
    c.reply(c.expect("guest-exec-status"), json::object{{"exited", true}, {"signal", 9}}, "\n");
  });
  auto qga = QgaClient::connect(server.socket(), 5s);
  auto r = qga.exec({"sleep", "100"}, 10s);
  CHECK(r.signal == 9);
  CHECK(r.exit_code == 128 + 9);
  CHECK(server.finish() == "");
}

TEST_CASE("guest-exec that outlives its deadline is a timeout naming it", "[qga_client]") {
  FakeServer server([&](FakeConn& c) {
    sync_up(c);
    c.reply(c.expect("guest-exec"), json::object{{"pid", 78}}, "\n");
    for (;;) c.reply(c.expect("guest-exec-status"), json::object{{"exited", false}}, "\n");
  });
  auto qga = QgaClient::connect(server.socket(), 5s);
  CHECK_THROWS_WITH(qga.exec({"sleep", "100"}, 300ms), Catch::Contains("'sleep' (guest pid 78)"));
}

TEST_CASE("an agent that is not up yet: sync retries until it answers", "[qga_client]") {
  FakeServer server([&](FakeConn& c) {
    // The agent is down: QEMU holds the bytes. Two syncs pile up unanswered.
    c.expect_sentinel();
    auto s1 = c.expect("guest-sync-delimited");
    auto s2 = c.expect("guest-sync-delimited", 10s);
    // The agent comes up and works through the backlog in order, as
    // qemu-ga does: an id-less error for the 0xFF, then each sync.
    c.send("{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '\\uFFFD'\"}}\n");
    answer_sync(c, s1);
    answer_sync(c, s2);
    // The client may have sent a third sync meanwhile; answer what comes.
    for (;;) {
      auto m = c.next();
      if (m.at("execute") == "guest-sync-delimited") {
        answer_sync(c, m);
        continue;
      }
      CHECK(m.at("execute") == "guest-ping");
      c.reply(m, json::object{}, "\n");
      break;
    }
  });
  auto qga = QgaClient::connect(server.socket(), 5s);
  qga.sync(15s);
  qga.ping();  // the late sync answers are not taken for the ping's
  CHECK(qga.stale_replies() >= 1);
  CHECK(server.finish() == "");
}

TEST_CASE("sync discards stale replies and a half message left in the stream", "[qga_client]") {
  FakeServer server([&](FakeConn& c) {
    // Left over from an earlier client: a whole reply and half of another.
    c.send("{\"return\": {\"pid\": 5}, \"id\": 3}\n{\"return\": {\"exi");
    sync_up(c);
    c.reply(c.expect("guest-ping"), json::object{}, "\n");
  });
  auto qga = QgaClient::connect(server.socket(), 5s);
  qga.ping(5s);  // syncs first
  CHECK(server.finish() == "");
}

TEST_CASE("sync times out when no agent ever answers", "[qga_client]") {
  FakeServer server([&](FakeConn& c) { c.hold(); });
  auto qga = QgaClient::connect(server.socket(), 5s);
  try {
    qga.sync(600ms);
    FAIL("sync should time out");
  } catch (const TimeoutError& e) {
    CHECK_THAT(e.what(), Catch::Contains("guest-sync-delimited"));
    CHECK_THAT(e.hint(), Catch::Contains("qemu-guest-agent"));
  }
  CHECK_FALSE(qga.synced());
}

TEST_CASE("a command that timed out forces a resync: its late reply is dropped", "[qga_client]") {
  FakeServer server([&](FakeConn& c) {
    sync_up(c);
    auto slow = c.expect("guest-get-time");
    // Late: the client has given up and resyncs before its next command.
    auto sync = c.expect("guest-sync-delimited");
    c.reply(slow, 123, "\n");
    answer_sync(c, sync);
    c.reply(c.expect("guest-get-time"), 456, "\n");
  });
  auto qga = QgaClient::connect(server.socket(), 5s);
  qga.sync(5s);
  CHECK_THROWS_AS(qga.get_time(100ms), TimeoutError);
  CHECK_FALSE(qga.synced());
  CHECK(qga.get_time(5s) == 456);
  CHECK(server.finish() == "");
}

TEST_CASE("garbage from the agent is a ProtocolError: the next command resyncs", "[qga_client]") {
  FakeServer server([&](FakeConn& c) {
    sync_up(c);
    c.expect("guest-ping");
    c.send("!!garbage!!\n");
    sync_up(c);
    c.reply(c.expect("guest-ping"), json::object{}, "\n");
  });
  auto qga = QgaClient::connect(server.socket(), 5s);
  CHECK_THROWS_WITH(qga.ping(), Catch::Contains("malformed data") && Catch::Contains("!!garbage!!"));
  CHECK_FALSE(qga.synced());
  qga.ping();
  CHECK(server.finish() == "");
}

TEST_CASE("an agent that does not echo ids is matched in order", "[qga_client]") {
  FakeServer server([&](FakeConn& c) {
    answer_sync(c, c.expect("guest-sync-delimited"), false);
    auto req = c.expect("guest-get-time");
    c.send("{\"return\": 99}\n");
    (void)req;
  });
  auto qga = QgaClient::connect(server.socket(), 5s);
  CHECK(qga.get_time() == 99);
  CHECK(server.finish() == "");
}

TEST_CASE("guest-shutdown: no reply means it was accepted", "[qga_client]") {
  FakeServer server([&](FakeConn& c) {
    sync_up(c);
    auto req = c.expect("guest-shutdown");
    CHECK(req.at("arguments").at("mode") == "reboot");
    c.hold();
  });
  auto qga = QgaClient::connect(server.socket(), 5s);
  qga.shutdown("reboot", 100ms);
  CHECK_FALSE(qga.synced());
}

TEST_CASE("the agent's socket closing is a ClosedError", "[qga_client]") {
  FakeServer server([&](FakeConn& c) {
    sync_up(c);
    c.expect("guest-info");
    c.close();
  });
  auto qga = QgaClient::connect(server.socket(), 5s);
  CHECK_THROWS_AS(qga.info(), ClosedError);
  CHECK_THROWS_AS(qga.ping(), ClosedError);
  CHECK(server.finish() == "");
}

TEST_CASE("read_file opens, reads to EOF, closes: a missing file is nullopt", "[qga_client]") {
  FakeServer server([&](FakeConn& c) {
    sync_up(c);
    auto open = c.expect("guest-file-open");
    CHECK(open.at("arguments").at("path") == "/sys/fs/cgroup/x/cgroup.events");
    CHECK(open.at("arguments").at("mode") == "r");
    c.reply(open, 5, "\n");
    auto r1 = c.expect("guest-file-read");
    CHECK(r1.at("arguments").at("handle") == 5);
    c.reply(r1, json::object{{"count", 12}, {"buf-b64", "cG9wdWxhdGVkIDEK"}, {"eof", false}}, "\n");
    c.reply(c.expect("guest-file-read"), json::object{{"count", 0}, {"buf-b64", ""}, {"eof", true}}, "\n");
    auto close = c.expect("guest-file-close");
    CHECK(close.at("arguments").at("handle") == 5);
    c.reply(close, json::object{}, "\n");
    auto missing = c.expect("guest-file-open");
    c.send(json::serialize(json::object{
               {"error", json::object{{"class", "GenericError"},
                                      {"desc", "failed to open file '/nope' (mode: 'r'): No such file or directory"}}},
               {"id", missing.at("id")}}) +
           "\n");
  });
  auto qga = QgaClient::connect(server.socket(), 5s);
  CHECK(qga.read_file("/sys/fs/cgroup/x/cgroup.events", 5s) == std::optional<std::string>("populated 1\n"));
  CHECK_FALSE(qga.read_file("/nope", 5s).has_value());
  CHECK(server.finish() == "");
}

TEST_CASE("guest-set-time sends the time in nanoseconds, and a refusal names the command", "[qga_client]") {
  json::object seen;
  FakeServer server([&](FakeConn& c) {
    sync_up(c);
    auto req = c.expect("guest-set-time");
    seen = req;
    c.reply(req, json::object{}, "\n");
    c.error_reply(c.expect("guest-set-time"), "GenericError", "hwclock failed to set hardware clock to system time");
  });
  auto qga = QgaClient::connect(server.socket(), 5s);
  qga.set_time(1'795'983'733'465'427'746);
  CHECK(seen.at("arguments").at("time").as_int64() == 1'795'983'733'465'427'746);
  try {
    qga.set_time(1);
    FAIL("the second set-time is refused");
  } catch (const CommandError& e) {
    CHECK(e.command() == "guest-set-time");
    CHECK_THAT(e.what(), Catch::Contains("hwclock"));
  }
  CHECK(server.finish() == "");
}
