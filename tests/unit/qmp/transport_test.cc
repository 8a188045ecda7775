#include "qmp/transport.h"

#include <catch2/catch.hpp>

#include "fake_server.h"
#include "qmp/errors.h"
#include "util/temp_dir.h"

using namespace avm::qmp;
using namespace std::chrono_literals;
using test::FakeConn;
using test::FakeServer;

TEST_CASE("a read that times out loses nothing: the bytes come with the next", "[transport]") {
  FakeServer server([](FakeConn& c) {
    c.expect("go");
    c.send("hello");
    c.wait_drained();
    c.send(" world");
    c.hold();
  });
  auto t = Transport::connect(server.socket(), Clock::now() + 5s);
  std::string got;
  CHECK(t.read_some(got, Clock::now() + 20ms) == Transport::Read::Timeout);
  CHECK(got.empty());
  t.write("{\"execute\": \"go\"}", Clock::now() + 5s);
  while (got.size() < 11) REQUIRE(t.read_some(got, Clock::now() + 5s) == Transport::Read::Data);
  CHECK(got == "hello world");
}

TEST_CASE("a zero deadline still takes what has already arrived", "[transport]") {
  FakeServer server([](FakeConn& c) { c.send("ready"); });  // then closes
  auto t = Transport::connect(server.socket(), Clock::now() + 5s);
  REQUIRE(server.finish() == "");  // the bytes and the close are in our socket now
  std::string got;
  CHECK(t.read_some(got, Clock::now()) == Transport::Read::Data);
  CHECK(got == "ready");
  CHECK(t.read_some(got, Clock::now()) == Transport::Read::Closed);
}

TEST_CASE("end of stream is Closed, after the last bytes", "[transport]") {
  FakeServer server([](FakeConn& c) {
    c.send("bye");
    c.close();
  });
  auto t = Transport::connect(server.socket(), Clock::now() + 5s);
  std::string got;
  Transport::Read r;
  while ((r = t.read_some(got, Clock::now() + 5s)) == Transport::Read::Data) {
  }
  CHECK(r == Transport::Read::Closed);
  CHECK(got == "bye");
  CHECK(server.finish() == "");
  CHECK_THROWS_AS(t.write("x", Clock::now() + 1s), ClosedError);
}

TEST_CASE("writing to a peer that left is a ClosedError, not SIGPIPE", "[transport]") {
  FakeServer server([](FakeConn& c) { c.close(); });
  auto t = Transport::connect(server.socket(), Clock::now() + 5s);
  REQUIRE(server.finish() == "");
  CHECK_THROWS_AS(t.write(std::string(1 << 20, 'x'), Clock::now() + 5s), ClosedError);
}

TEST_CASE("a peer that stops reading makes a write time out", "[transport]") {
  FakeServer server([](FakeConn& c) { c.hold(); });
  auto t = Transport::connect(server.socket(), Clock::now() + 5s);
  // Far more than the socket buffers hold.
  CHECK_THROWS_AS(t.write(std::string(64 << 20, 'x'), Clock::now() + 200ms), TimeoutError);
  CHECK_FALSE(t.is_open());
}

TEST_CASE("connect errors say what to do", "[transport]") {
  avm::TempDir dir("agent-vm-qmp-test");
  CHECK_THROWS_AS(Transport::connect(dir.path() / "none.sock", Clock::now() + 1s), ConnectError);
  auto too_long = dir.path() / std::string(200, 'x');
  CHECK_THROWS_WITH(Transport::connect(too_long, Clock::now() + 1s), Catch::Contains("cannot use"));
}
