#include "qmp/json_text.h"

#include <boost/json/parse.hpp>
#include <catch2/catch.hpp>

using namespace avm::qmp;
namespace json = boost::json;

TEST_CASE("pretty_json indents, keeps key order and escapes", "[json_text]") {
  json::value v = json::parse(R"({"z": 1, "a": [true, null, {}], "s": "q\"\n", "e": []})");
  CHECK(pretty_json(v) ==
        "{\n"
        "  \"z\": 1,\n"
        "  \"a\": [\n"
        "    true,\n"
        "    null,\n"
        "    {}\n"
        "  ],\n"
        "  \"s\": \"q\\\"\\n\",\n"
        "  \"e\": []\n"
        "}");
  CHECK(json::parse(pretty_json(v)) == v);
  CHECK(pretty_json(json::value("x")) == "\"x\"");
}

TEST_CASE("finite_numbers tells values JSON text can carry from those it cannot", "[json_text]") {
  CHECK(finite_numbers(json::parse(R"({"a": [0, -1, 1.5e308, 18446744073709551615, "1e400"], "b": null})")));
  CHECK(finite_numbers(json::value(4.9e-324)));
  // Boost.JSON reads these as infinity, and would write them as `Infinity`.
  CHECK_FALSE(finite_numbers(json::parse("[1e400]")));
  CHECK_FALSE(finite_numbers(json::parse(R"({"a": {"b": [true, -5e955]}})")));
  CHECK_FALSE(finite_numbers(json::parse(R"({"a": 1e999})").as_object()));
  CHECK(finite_numbers(json::object{}));
}
