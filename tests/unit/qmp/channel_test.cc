#include "qmp/channel.h"

#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>

#include "fake_server.h"

using namespace avm::qmp;
using namespace std::chrono_literals;
namespace json = boost::json;
using test::FakeConn;
using test::FakeServer;

namespace {

// A peer that records what the channel hands it and takes nothing unmatched.
struct Recorder final : Channel::Peer {
  std::vector<std::string> messages;
  std::vector<std::string> unmatched;
  std::vector<std::string> garbage_seen;
  bool take = false;

  void message(Message& m) override {
    messages.push_back(m.kind == Message::Kind::Event ? m.event.name : "greeting");
  }
  bool take_unmatched(const Reply& r) override {
    unmatched.push_back(r.id ? json::serialize(*r.id) : "no id");
    return take;
  }
  void garbage(const std::string& why) override { garbage_seen.push_back(why); }
};

Channel::Options options(bool garbage_breaks) {
  return {.framer = FramerOptions{.sentinel = !garbage_breaks},
          .garbage_breaks = garbage_breaks,
          .name = "test socket",
          .closed_hint = "closed hint",
          .garbage_hint = "garbage hint"};
}

Channel connect(const FakeServer& server, Recorder& peer, bool garbage_breaks = true) {
  return Channel(Transport::connect(server.socket(), Clock::now() + 5s), options(garbage_breaks), peer);
}

}  // namespace

TEST_CASE("a reply is paired with its command by id, events and other replies go to the peer", "[channel]") {
  FakeServer server([](FakeConn& c) {
    auto req = c.expect("query-status");
    c.event("RESUME");
    c.send(R"({"return": {}, "id": 999})" "\n");  // someone else's
    c.send(R"({"return": "stale"})" "\n");
    c.reply(req, json::object{{"running", true}});
  });
  Recorder peer;
  Channel ch = connect(server, peer);
  auto id = ch.fresh_id();
  ch.send("query-status", {}, id, Clock::now() + 5s);
  REQUIRE(ch.await_reply(id, Clock::now() + 5s) == Channel::Wait::Reply);
  CHECK(ch.take_reply().result.at("running").as_bool());
  CHECK(peer.messages == std::vector<std::string>{"RESUME"});
  CHECK(peer.unmatched == std::vector<std::string>{"999", "no id"});
  CHECK(ch.fresh_id() == id + 1);
  CHECK(server.finish() == "");
}

TEST_CASE("a late reply to a command that timed out is dropped, not taken for the next", "[channel]") {
  FakeServer server([](FakeConn& c) {
    auto slow = c.expect("slow");
    auto next = c.expect("next");
    c.reply(slow, "late");
    c.reply(next, "mine");
  });
  Recorder peer;
  Channel ch = connect(server, peer);
  auto start = Clock::now();
  auto slow = ch.fresh_id();
  ch.send("slow", {}, slow, Clock::now() + 5s);
  auto wait = ch.await_reply(slow, Clock::now() + 100ms);
  REQUIRE(wait == Channel::Wait::Timeout);
  CHECK_THROWS_AS(ch.fail(wait, "the reply to 'slow'", start, "hint"), TimeoutError);
  auto next = ch.fresh_id();
  ch.send("next", {}, next, Clock::now() + 5s);
  REQUIRE(ch.await_reply(next, Clock::now() + 5s) == Channel::Wait::Reply);
  CHECK(ch.take_reply().result.as_string() == "mine");
  CHECK(peer.unmatched.size() == 1);
  CHECK(server.finish() == "");
}

TEST_CASE("the peer may take a reply without the id in flight", "[channel]") {
  FakeServer server([](FakeConn& c) {
    c.expect("guest-ping");
    c.send(R"({"return": {}})" "\n");
  });
  Recorder peer;
  peer.take = true;
  Channel ch = connect(server, peer, false);
  auto id = ch.fresh_id();
  ch.send("guest-ping", {}, id, Clock::now() + 5s);
  CHECK(ch.await_reply(id, Clock::now() + 5s) == Channel::Wait::Reply);
  CHECK(server.finish() == "");
}

TEST_CASE("a close is Closed and names the channel, and sending afterwards is a ClosedError", "[channel]") {
  FakeServer server([](FakeConn& c) {
    c.expect("x");
    c.send(R"({"return": )");
    c.close();
  });
  Recorder peer;
  Channel ch = connect(server, peer);
  auto start = Clock::now();
  auto id = ch.fresh_id();
  ch.send("x", {}, id, Clock::now() + 5s);
  auto wait = ch.await_reply(id, Clock::now() + 5s);
  REQUIRE(wait == Channel::Wait::Closed);
  CHECK(ch.closed());
  CHECK_THROWS_WITH(ch.fail(wait, "the reply to 'x'", start, "hint"),
                    Catch::Contains("test socket") && Catch::Contains("closed while waiting for the reply to 'x'") &&
                        Catch::Contains("in the middle of a message"));
  CHECK_THROWS_AS(ch.check_usable("y"), ClosedError);
  CHECK(server.finish() == "");
}

TEST_CASE("malformed data breaks a channel that cannot resynchronise", "[channel]") {
  FakeServer server([](FakeConn& c) {
    c.expect("x");
    c.send("\x01garbage\n");
    c.hold();
  });
  Recorder peer;
  Channel ch = connect(server, peer, true);
  auto start = Clock::now();
  auto id = ch.fresh_id();
  ch.send("x", {}, id, Clock::now() + 5s);
  auto wait = ch.await_reply(id, Clock::now() + 5s);
  REQUIRE(wait == Channel::Wait::Broken);
  CHECK(ch.broken().has_value());
  CHECK_THROWS_AS(ch.fail(wait, "the reply to 'x'", start, "hint"), ProtocolError);
  CHECK_THROWS_AS(ch.check_usable("y"), ProtocolError);
  CHECK(peer.garbage_seen.empty());
}

TEST_CASE("malformed data fails only the command in flight of a channel that resynchronises", "[channel]") {
  FakeServer server([](FakeConn& c) {
    auto req = c.expect("x");
    c.send("!!garbage!!\n");
    auto again = c.expect("y");
    c.send("\xff");
    c.reply(again, "fine");
  });
  Recorder peer;
  Channel ch = connect(server, peer, false);
  auto start = Clock::now();
  auto id = ch.fresh_id();
  ch.send("x", {}, id, Clock::now() + 5s);
  auto wait = ch.await_reply(id, Clock::now() + 5s);
  REQUIRE(wait == Channel::Wait::Garbage);
  CHECK(peer.garbage_seen.size() == 1);
  CHECK_THROWS_WITH(ch.fail(wait, "the reply to 'x'", start, "hint"),
                    Catch::Contains("malformed data") && Catch::Contains("!!garbage!!"));
  CHECK_FALSE(ch.broken());
  ch.check_usable("y");
  auto next = ch.fresh_id();
  ch.send("y", {}, next, Clock::now() + 5s);
  REQUIRE(ch.await_reply(next, Clock::now() + 5s) == Channel::Wait::Reply);
  CHECK(ch.take_reply().result.as_string() == "fine");
  CHECK(server.finish() == "");
}
