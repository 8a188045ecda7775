#include "qmp/message.h"

#include <boost/json/parse.hpp>
#include <catch2/catch.hpp>

#include "qmp/errors.h"

using namespace avm::qmp;
namespace json = boost::json;

TEST_CASE("requests carry execute, arguments when given, and the id", "[message]") {
  CHECK(json::parse(make_request("query-status", {}, 7)) == json::parse(R"({"execute":"query-status","id":7})"));
  CHECK(json::parse(make_request("qom-get", {{"path", "/machine"}}, std::nullopt)) ==
        json::parse(R"({"execute":"qom-get","arguments":{"path":"/machine"}})"));
}

TEST_CASE("classify tells greetings, replies and events apart", "[message]") {
  auto g = classify(json::parse(R"({"QMP": {"version": {}, "capabilities": []}})"));
  CHECK(g.kind == Message::Kind::Greeting);
  auto r = classify(json::parse(R"({"return": {"a": 1}, "id": 3})"));
  REQUIRE(r.kind == Message::Kind::Reply);
  CHECK(r.reply.ok);
  CHECK(r.reply.our_id() == 3u);
  CHECK(r.reply.result.at("a") == 1);
  auto e = classify(json::parse(R"({"id": "x", "error": {"class": "GenericError", "desc": "no"}})"));
  CHECK_FALSE(e.reply.ok);
  CHECK_FALSE(e.reply.our_id());  // not an id we would send
  CHECK(e.reply.error_class == "GenericError");
  auto ev = classify(json::parse(R"({"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 2}})"));
  CHECK(ev.kind == Message::Kind::Event);
  CHECK(ev.event.name == "STOP");
}

TEST_CASE("classify rejects messages of no known shape", "[message]") {
  CHECK_THROWS_AS(classify(json::parse(R"({"hello": 1})")), ProtocolError);
  CHECK_THROWS_AS(classify(json::parse(R"({"return": 1, "error": {}})")), ProtocolError);
  CHECK_THROWS_WITH(classify(json::parse(R"({"error": {"class": "X"}})")), "error reply has no 'desc'");
  CHECK_THROWS_AS(classify(json::parse(R"({"event": 5, "timestamp": {}})")), ProtocolError);
  CHECK_THROWS_AS(classify(json::parse("[1]")), ProtocolError);
}

TEST_CASE("result_or_throw returns the result or a CommandError", "[message]") {
  Reply ok;
  ok.result = 5;
  CHECK(result_or_throw(ok, "x") == 5);
  Reply bad;
  bad.ok = false;
  bad.error_class = "CommandNotFound";
  bad.error_desc = "The command x has not been found";
  try {
    result_or_throw(bad, "x", "guest agent");
    FAIL();
  } catch (const CommandError& e) {
    CHECK(e.command() == "x");
    CHECK(std::string(e.what()) == "x: guest agent replied with error CommandNotFound: The command x has not been found");
    CHECK_FALSE(e.hint().empty());
  }
}
