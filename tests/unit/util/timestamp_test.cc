#include "util/timestamp.h"

#include <catch2/catch.hpp>
#include <cctype>

TEST_CASE("utc_now_iso8601 is UTC ISO-8601 to the second", "[timestamp]") {
  std::string t = avm::utc_now_iso8601();
  REQUIRE(t.size() == 20);
  for (std::size_t i : {4u, 7u}) CHECK(t[i] == '-');
  CHECK(t[10] == 'T');
  for (std::size_t i : {13u, 16u}) CHECK(t[i] == ':');
  CHECK(t[19] == 'Z');
  for (std::size_t i : {0u, 1u, 2u, 3u, 5u, 6u, 8u, 9u, 11u, 12u, 14u, 15u, 17u, 18u})
    CHECK(std::isdigit(static_cast<unsigned char>(t[i])));
}
