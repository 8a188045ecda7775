#include "commands/render.h"

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <sstream>

#include "util/error.h"

using namespace avm::cmd;

TEST_CASE("tables pad columns to the widest cell and right-align numbers", "[render]") {
  std::ostringstream out;
  print_table(out, {"ID", "STATUS", "SSH"}, {{"k3f9ab", "running", "2222"}, {"m2", "stopped", "22"}}, {2});
  CHECK(out.str() ==
        "ID      STATUS    SSH\n"
        "k3f9ab  running  2222\n"
        "m2      stopped    22\n");
}

TEST_CASE("table widths count characters, not bytes", "[render]") {
  std::ostringstream out;
  print_table(out, {"A", "B"}, {{"ü", "x"}, {"ab", "y"}});
  CHECK(out.str() == "A   B\nü   x\nab  y\n");
}

TEST_CASE("JSON output is indented and ends with a newline", "[render]") {
  std::ostringstream out;
  print_json(out, boost::json::parse(R"({"id":"k3","ports":[2222],"empty":{}})"));
  CHECK(out.str() == "{\n  \"id\": \"k3\",\n  \"ports\": [\n    2222\n  ],\n  \"empty\": {}\n}\n");
}

TEST_CASE("command arguments must be one JSON object", "[render]") {
  CHECK(parse_command_arguments("", "query-status").empty());
  CHECK(parse_command_arguments(R"({"path":"/machine"})", "qom-list").at("path") == "/machine");
  CHECK_THROWS_WITH(parse_command_arguments("[1]", "qom-list"), Catch::Contains("qom-list"));
  CHECK_THROWS_AS(parse_command_arguments("{bad", "x"), avm::Error);
}
