#include "sessions/ids.h"

#include <catch2/catch.hpp>
#include <set>

#include "util/error.h"

using namespace avm::sessions;

TEST_CASE("generated ids are short, typeable and varied", "[ids]") {
  std::set<std::string> seen;
  for (int i = 0; i < 2000; ++i) {
    std::string id = generate_id();
    REQUIRE(id.size() == kIdLength);
    CHECK(is_valid_id(id));
    CHECK(id[0] >= 'a');
    CHECK(id[0] <= 'z');
    for (char c : id) {
      CHECK(kIdAlphabet.find(c) != std::string_view::npos);
      CHECK(std::string_view("0o1li").find(c) == std::string_view::npos);
    }
    seen.insert(id);
  }
  // 31^5 * 23 possibilities: 2000 draws should practically never collide.
  CHECK(seen.size() >= 1995);
}

TEST_CASE("only plain names are ids", "[ids]") {
  for (const char* ok : {"a", "k3f9ab", "my-session", "x_1", "9lives"}) CHECK(is_valid_id(ok));
  for (const char* bad : {"", ".", "..", "../x", "a/b", "/abs", ".hidden", "-flag", "_x", "a b",
                          "Upper", "a\\b", "a\nb", "tab\t", "caf\xc3\xa9"})
    CHECK_FALSE(is_valid_id(bad));
  CHECK_FALSE(is_valid_id(std::string(65, 'a')));
  CHECK(is_valid_id(std::string(64, 'a')));
}

TEST_CASE("check_id says what is wrong", "[ids]") {
  auto msg = [](std::string_view s) {
    try {
      check_id(s);
    } catch (const avm::Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  CHECK(msg("abc") == "accepted");
  CHECK(msg("") == "no session id given");
  CHECK(msg("a/b").find("path separator") != std::string::npos);
  CHECK(msg("../etc").find("path separator") != std::string::npos);
  CHECK(msg("..").find("relative path") != std::string::npos);
  CHECK(msg(".x").find("relative path") != std::string::npos);
  CHECK(msg("a..b").find("relative path") != std::string::npos);
  CHECK(msg("ABC").find("upper-case") != std::string::npos);
  CHECK(msg("a b").find("the character ' '") != std::string::npos);
  CHECK(msg("a\x01").find("control character") != std::string::npos);
  CHECK(msg("-x").find("cannot start with '-'") != std::string::npos);
}
