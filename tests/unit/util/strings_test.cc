#include "util/strings.h"

#include <catch2/catch.hpp>

#include "util/error.h"

using namespace std::chrono_literals;

TEST_CASE("shell_quote quotes only what needs it", "[strings]") {
  CHECK(avm::shell_quote("plain-word_1.2") == "plain-word_1.2");
  CHECK(avm::shell_quote("two words") == "'two words'");
  CHECK(avm::shell_quote("it's") == "'it'\\''s'");
  CHECK(avm::shell_quote("") == "''");
  CHECK(avm::shell_join({"echo", "a b"}) == "echo 'a b'");
}

TEST_CASE("parse_mib reads sizes and rejects garbage", "[strings]") {
  CHECK(avm::parse_mib("512") == 512);
  CHECK(avm::parse_mib("512M") == 512);
  CHECK(avm::parse_mib("2G") == 2048);
  CHECK(avm::parse_mib("2gib") == 2048);
  CHECK_THROWS_AS(avm::parse_mib("lots"), avm::Error);
  CHECK_THROWS_AS(avm::parse_mib("2T"), avm::Error);
  CHECK_THROWS_AS(avm::parse_mib("0"), avm::Error);
}

TEST_CASE("human durations", "[strings]") {
  CHECK(avm::human_duration(5s) == "5s");
  CHECK(avm::human_duration(125s) == "2m");
  CHECK(avm::human_duration(7200s) == "2h");
  CHECK(avm::human_duration(200000s) == "2d");
}

TEST_CASE("tail_lines keeps the last lines", "[strings]") {
  CHECK(avm::tail_lines("a\nb\nc\n", 2) == "b\nc\n");
  CHECK(avm::tail_lines("a\nb\nc", 5) == "a\nb\nc");
  CHECK(avm::tail_lines("", 3) == "");
  CHECK(avm::split("a,,b", ',') == std::vector<std::string>{"a", "", "b"});
  CHECK(avm::trim("  x \n") == "x");
}

TEST_CASE("lower_ascii lowers ASCII letters only", "[strings]") {
  CHECK(avm::lower_ascii("Api.Anthropic.COM") == "api.anthropic.com");
  CHECK(avm::lower_ascii("x-Y_9@Z") == "x-y_9@z");
  CHECK(avm::lower_ascii("\xC3\x89t\xC3\xA9") == "\xC3\x89t\xC3\xA9");  // UTF-8 bytes untouched
}

TEST_CASE("parse_key_values splits at the first '=' and skips the rest", "[strings]") {
  using KV = std::vector<std::pair<std::string, std::string>>;
  CHECK(avm::parse_key_values("a=1\n# c=2\n\nno equals\nb= x=y \n=v\n") ==
        KV{{"a", "1"}, {"b", " x=y "}, {"", "v"}});
  CHECK(avm::parse_key_values("  a = 1 \n  # c=2\n\tb=x=y\n", true) == KV{{"a", "1"}, {"b", "x=y"}});
}
