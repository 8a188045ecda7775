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
