// QgaClient against a real qemu-ga (running on the host over a unix socket:
// the same agent and protocol a guest runs, minus the virtio-serial hop).
#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>
#include <ctime>

#include "qmp/qga_client.h"
#include "test_peers.h"

using namespace avm::qmp;
using namespace std::chrono_literals;
namespace json = boost::json;
using test::HostAgent;

TEST_CASE("qemu-ga: sync, ping, info, osinfo, time", "[qga][qemu-ga]") {
  HostAgent agent;
  auto qga = QgaClient::connect(agent.socket(), 10s);
  qga.sync(10s);
  CHECK(qga.synced());
  qga.ping();
  auto info = qga.info();
  CHECK(info.supports("guest-exec"));
  CHECK_FALSE(info.supports("guest-shutdown"));
  auto os = qga.osinfo();
  CHECK(os.machine == "x86_64");
  std::int64_t now_ns = static_cast<std::int64_t>(std::time(nullptr)) * 1'000'000'000;
  std::int64_t t = qga.get_time();
  CHECK(t > now_ns - 60'000'000'000);
  CHECK(t < now_ns + 60'000'000'000);
}

TEST_CASE("qemu-ga: guest-exec with argv, env, input: output decoded", "[qga][qemu-ga]") {
  HostAgent agent;
  auto qga = QgaClient::connect(agent.socket(), 10s);
  auto r = qga.exec({"sh", "-c", "read x; printf 'out:%s:%s\\n' \"$x\" \"$GREETING\"; echo err >&2; exit 7"}, 20s,
                    {"GREETING=hi there"}, "hello\n");
  CHECK(r.exit_code == 7);
  CHECK_FALSE(r.signal);
  CHECK(r.out == "out:hello:hi there\n");
  CHECK(r.err == "err\n");
  // Binary output survives the base64 round trip.
  auto bin = qga.exec({"printf", "\\000\\377\\001"}, 20s);
  CHECK(bin.out == std::string("\0\xff\x01", 3));
  auto killed = qga.exec({"sh", "-c", "kill -KILL $$"}, 20s);
  CHECK(killed.signal == 9);
  CHECK(killed.exit_code == 128 + 9);
}

TEST_CASE("qemu-ga: a refused command and an unknown one are CommandErrors", "[qga][qemu-ga]") {
  HostAgent agent;
  auto qga = QgaClient::connect(agent.socket(), 10s);
  try {
    qga.shutdown("powerdown", 5s);  // blocked on this host agent
    FAIL("guest-shutdown is blocked");
  } catch (const CommandError& e) {
    CHECK(e.error_class() == "CommandNotFound");
    CHECK_THAT(e.desc(), Catch::Contains("disabled"));
  }
  CHECK_THROWS_AS(qga.execute("no-such-command"), CommandError);
  qga.ping();  // still in step
}

TEST_CASE("qemu-ga: a client that gave up mid-command leaves the next one unaffected", "[qga][qemu-ga]") {
  HostAgent agent;
  {
    auto first = QgaClient::connect(agent.socket(), 10s);
    first.sync(10s);
    // Leaves a command whose reply nobody reads.
    CHECK_THROWS_AS(first.exec({"sleep", "1"}, 1ms), TimeoutError);
  }
  auto second = QgaClient::connect(agent.socket(), 10s);
  CHECK(second.get_time() > 0);
  second.ping();
}
