#include "json/text.h"

#include <boost/json/parse.hpp>
#include <catch2/catch.hpp>

namespace bj = boost::json;
using avm::json::finite_numbers;
using avm::json::kind_name;
using avm::json::pretty_json;

TEST_CASE("pretty_json indents, keeps key order and escapes", "[text]") {
  bj::value v = bj::parse(R"({"z": 1, "a": [true, null, {}], "s": "q\"\n\u0001", "e": []})");
  CHECK(pretty_json(v) ==
        "{\n"
        "  \"z\": 1,\n"
        "  \"a\": [\n"
        "    true,\n"
        "    null,\n"
        "    {}\n"
        "  ],\n"
        "  \"s\": \"q\\\"\\n\\u0001\",\n"
        "  \"e\": []\n"
        "}");
  CHECK(bj::parse(pretty_json(v)) == v);
}

TEST_CASE("pretty_json prints scalars and empty containers on one line, with no newline", "[text]") {
  CHECK(pretty_json(bj::value("x")) == "\"x\"");
  CHECK(pretty_json(bj::value(nullptr)) == "null");
  CHECK(pretty_json(bj::object{}) == "{}");
  CHECK(pretty_json(bj::array{}) == "[]");
  CHECK(pretty_json(bj::parse(R"({"k\"ey": {"in": {"deep": [[]]}}})")) ==
        "{\n"
        "  \"k\\\"ey\": {\n"
        "    \"in\": {\n"
        "      \"deep\": [\n"
        "        []\n"
        "      ]\n"
        "    }\n"
        "  }\n"
        "}");
}

TEST_CASE("finite_numbers tells values JSON text can carry from those it cannot", "[text]") {
  CHECK(finite_numbers(bj::parse(R"({"a": [0, -1, 1.5e308, 18446744073709551615, "1e400"], "b": null})")));
  CHECK(finite_numbers(bj::value(4.9e-324)));
  // Boost.JSON reads these as infinity, and would write them as `Infinity`.
  CHECK_FALSE(finite_numbers(bj::parse("[1e400]")));
  CHECK_FALSE(finite_numbers(bj::parse(R"({"a": {"b": [true, -5e955]}})")));
  CHECK_FALSE(finite_numbers(bj::parse(R"({"a": 1e999})").as_object()));
  CHECK(finite_numbers(bj::object{}));
}

TEST_CASE("kind_name names every kind for messages", "[text]") {
  CHECK(std::string(kind_name(bj::value(nullptr))) == "null");
  CHECK(std::string(kind_name(bj::value(true))) == "a boolean");
  CHECK(std::string(kind_name(bj::value(-1))) == "a number");
  CHECK(std::string(kind_name(bj::value(18446744073709551615ULL))) == "a number");
  CHECK(std::string(kind_name(bj::value(0.5))) == "a number");
  CHECK(std::string(kind_name(bj::value("s"))) == "a string");
  CHECK(std::string(kind_name(bj::array{})) == "an array");
  CHECK(std::string(kind_name(bj::object{})) == "an object");
}
