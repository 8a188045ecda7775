#include "json/enum_table.h"

#include <catch2/catch.hpp>

namespace {

enum class Color { Red, Green, Blue, Unlisted };

constexpr auto kColors = avm::json::enum_table<Color>({
    {Color::Red, "red"},
    {Color::Green, "green"},
    {Color::Blue, "light-blue"},
});
static_assert(kColors.unique());
static_assert(kColors.size() == 3);
static_assert(kColors.to_string(Color::Green) == "green");
static_assert(*kColors.from_string("light-blue") == Color::Blue);

}  // namespace

TEST_CASE("an enum table reads both ways", "[enum_table]") {
  for (const auto& [value, name] : kColors) {
    CHECK(kColors.to_string(value) == name);
    CHECK(kColors.from_string(name) == value);
  }
}

TEST_CASE("an enum table has no value for an unknown name, and a fallback name", "[enum_table]") {
  CHECK_FALSE(kColors.from_string("purple").has_value());
  CHECK_FALSE(kColors.from_string("Red").has_value());  // exact, case-sensitive
  CHECK_FALSE(kColors.from_string("").has_value());
  CHECK(kColors.to_string(Color::Unlisted) == "unknown");
  CHECK(kColors.to_string(Color::Unlisted, "?") == "?");
}

TEST_CASE("an enum table with a repeated value or name is not unique", "[enum_table]") {
  constexpr auto same_name = avm::json::enum_table<Color>({{Color::Red, "x"}, {Color::Blue, "x"}});
  constexpr auto same_value = avm::json::enum_table<Color>({{Color::Red, "x"}, {Color::Red, "y"}});
  STATIC_REQUIRE_FALSE(same_name.unique());
  STATIC_REQUIRE_FALSE(same_value.unique());
}
