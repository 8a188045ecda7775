#include "qmp/fields.h"

#include <boost/json/parse.hpp>
#include <catch2/catch.hpp>

#include "qmp/errors.h"

using namespace avm::qmp;
namespace json = boost::json;

TEST_CASE("Fields reads typed values and names what is wrong", "[fields]") {
  json::value v = json::parse(R"({"s": "x", "b": true, "i": 5, "u": 18446744073709551615, "o": {}, "a": [1]})");
  Fields f(v, "reply");
  CHECK(f.str("s") == "x");
  CHECK(f.boolean("b"));
  CHECK(f.int64("i") == 5);
  CHECK(f.obj("o").empty());
  CHECK(f.arr("a").size() == 1);
  CHECK_FALSE(f.opt_str("missing"));
  CHECK(f.opt_int64("i") == 5);
  CHECK(f.opt_obj("missing") == nullptr);
  CHECK_THROWS_WITH(f.str("missing"), "reply has no 'missing'");
  CHECK_THROWS_WITH(f.str("b"), "reply: 'b' is a boolean, not a string");
  CHECK_THROWS_WITH(f.int64("u"), "reply: 'u' is a number, not an integer");
  CHECK_THROWS_WITH(f.opt_bool("s"), "reply: 's' is a string, not a boolean");
  CHECK_THROWS_WITH(Fields(json::value(3), "reply"), "reply is a number, not an object");
}

TEST_CASE("with_context prefixes the command to protocol errors only", "[fields]") {
  CHECK_THROWS_WITH(with_context("query-status", []() -> int { throw ProtocolError("reply has no 'status'"); }),
                    "query-status: reply has no 'status'");
  CHECK(with_context("x", [] { return 4; }) == 4);
}
