#include "qmp/events.h"

#include <catch2/catch.hpp>

#include "qmp/errors.h"
#include "transcript.h"

using namespace avm::qmp;
namespace json = boost::json;

TEST_CASE("recorded events parse into typed events", "[events]") {
  auto t = test::Transcript::load("qmp-session.txt");
  std::vector<std::string> names;
  for (const auto& v : t.events()) {
    Event e = parse_event(v.as_object());
    names.push_back(e.name);
    CHECK(e.ts_seconds > 1'600'000'000);
    if (e.name == "SHUTDOWN") {
      auto s = ShutdownEvent::from(e);
      CHECK_FALSE(s.guest);
      CHECK(s.reason == "host-qmp-quit");
    }
    if (e.name == "RESET") CHECK(ResetEvent::from(e).reason == "host-qmp-system-reset");
    if (e.name == "STOP") StopEvent::from(e);
    if (e.name == "RESUME") ResumeEvent::from(e);
    if (e.name == "POWERDOWN") PowerdownEvent::from(e);
  }
  CHECK(names == std::vector<std::string>{"STOP", "RESUME", "RESET", "POWERDOWN", "SHUTDOWN"});
}

TEST_CASE("typed events check the name and their fields", "[events]") {
  Event stop{1, "STOP", {}, 1, 2};
  CHECK_THROWS_WITH(ShutdownEvent::from(stop), "expected event SHUTDOWN, got STOP");
  Event bare{2, "SHUTDOWN", {}, 1, 2};
  CHECK_THROWS_WITH(ShutdownEvent::from(bare), "event SHUTDOWN data has no 'guest'");
  Event panicked{3, "GUEST_PANICKED", {{"action", "poweroff"}, {"info", {{"type", "hyper-v"}}}}, 1, 2};
  auto p = GuestPanickedEvent::from(panicked);
  CHECK(p.action == "poweroff");
  REQUIRE(p.info);
  CHECK(p.info->at("type") == "hyper-v");
  Event deleted{4, "DEVICE_DELETED", {{"path", "/machine/peripheral-anon/device[0]"}}, 1, 2};
  CHECK_FALSE(DeviceDeletedEvent::from(deleted).device);
  CHECK_THROWS_AS(parse_event(json::object{{"event", "STOP"}}), ProtocolError);
}

TEST_CASE("the event buffer numbers events and finds them after a cursor", "[events]") {
  EventBuffer b(3);
  CHECK(b.cursor() == 0);
  b.push({0, "STOP", {}, 0, 0});
  EventCursor mark = b.cursor();
  b.push({0, "RESUME", {}, 0, 0});
  b.push({0, "STOP", {{"n", 2}}, 0, 0});
  CHECK(b.cursor() == 3);
  CHECK(b.find("STOP", 0)->seq == 1);
  CHECK(b.find("STOP", mark)->seq == 3);
  CHECK(b.find("", mark)->name == "RESUME");
  CHECK_FALSE(b.find("STOP", 3));
  CHECK_FALSE(b.find("STOP", mark, [](const Event& e) { return !e.data.contains("n"); }));
  CHECK(b.since(1).size() == 2);
  // Bounded: the oldest goes first.
  b.push({0, "RESET", {}, 0, 0});
  CHECK(b.size() == 3);
  CHECK(b.dropped() == 1);
  CHECK_FALSE(b.find("STOP", 0, [](const Event& e) { return e.seq == 1; }));
}

TEST_CASE("to_json gives back what QEMU sent, with seq", "[events]") {
  Event e{5, "RESET", {{"guest", true}, {"reason", "guest-reset"}}, 10, 20};
  auto o = to_json(e);
  CHECK(o.at("event") == "RESET");
  CHECK(o.at("data").at("reason") == "guest-reset");
  CHECK(o.at("timestamp").at("microseconds") == 20);
  CHECK(o.at("seq") == 5);
}
