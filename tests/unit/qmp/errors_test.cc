#include "qmp/errors.h"

#include <boost/json/parse.hpp>
#include <catch2/catch.hpp>

using namespace avm::qmp;
namespace json = boost::json;

TEST_CASE("a peer's fields are read with errors that are ProtocolErrors naming the field", "[errors]") {
  json::value v = json::parse(
      R"({"s": "x", "b": true, "n": null, "u": 18446744073709551615, "o": {"in": 1}, "a": [1, "x"]})");
  auto f = fields(v, "reply");
  CHECK(f.str("s") == "x");
  CHECK_THROWS_AS(f.str("missing"), ProtocolError);
  CHECK_THROWS_WITH(f.str("missing"), "reply has no 'missing'");
  CHECK_THROWS_WITH(f.str("b"), "reply: 'b' is a boolean, not a string");
  CHECK_THROWS_WITH(f.opt_bool("s"), "reply: 's' is a string, not a boolean");
  // null is a value here, not an absent field.
  CHECK_THROWS_WITH(f.opt_str("n"), "reply: 'n' is null, not a string");
  CHECK_THROWS_WITH(f.int64("u"), "reply: 'u' is out of range (18446744073709551615)");
  CHECK_THROWS_WITH(f.obj("o").str("in"), "reply.o: 'in' is a number, not a string");
  CHECK_THROWS_WITH(f.obj("o").str("gone"), "reply.o has no 'gone'");
  CHECK_THROWS_WITH(f.arr("a").obj(0), "reply.a[0] is a number, not an object");
  CHECK_THROWS_WITH(f.strings("a"), "reply.a[0] is a number, not a string");
  CHECK_THROWS_AS(fields(json::value(3), "reply"), ProtocolError);
  CHECK_THROWS_WITH(fields(json::value(3), "reply"), "reply is a number, not an object");
}

TEST_CASE("with_context prefixes the command to protocol errors only", "[errors]") {
  CHECK_THROWS_WITH(with_context("query-status", []() -> int { throw ProtocolError("reply has no 'status'"); }),
                    "query-status: reply has no 'status'");
  CHECK_THROWS_WITH(with_context("query-status", [] { return fields(json::object{}, "reply").str("status"); }),
                    "query-status: reply has no 'status'");
  CHECK_THROWS_AS(with_context("x", []() -> int { throw avm::Error("other"); }), avm::Error);
  CHECK_THROWS_WITH(with_context("x", []() -> int { throw avm::Error("other"); }), "other");
  CHECK(with_context("x", [] { return 4; }) == 4);
}
