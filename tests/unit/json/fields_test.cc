#include "json/fields.h"

#include <boost/json/parse.hpp>
#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>

using avm::json::FieldError;
using avm::json::Fields;
using avm::json::Items;
using avm::json::Null;
using avm::json::Policy;
using Problem = FieldError::Problem;
namespace bj = boost::json;

namespace {

// The error `f` throws; fails the test when it throws none.
template <class F>
FieldError error_of(F&& f) {
  try {
    f();
  } catch (const FieldError& e) {
    return e;
  }
  FAIL("no FieldError");
  throw 0;
}

}  // namespace

TEST_CASE("Fields reads typed values", "[fields]") {
  bj::value v = bj::parse(R"({"s": "x", "b": true, "i": -5, "o": {"k": 1}, "a": [1], "n": null})");
  Fields f(v, "reply");
  CHECK(f.str("s") == "x");
  CHECK(f.boolean("b"));
  CHECK(f.int64("i") == -5);
  CHECK(f.obj("o").int64("k") == 1);
  CHECK(f.arr("a").size() == 1);
  CHECK(f.has("n"));
  CHECK_FALSE(f.has("missing"));
  CHECK_FALSE(f.opt_str("missing"));
  CHECK(f.opt_int64("i") == -5);
  CHECK_FALSE(f.opt_obj("missing"));
  CHECK(f.path_of("s") == "reply.s");
}

TEST_CASE("an error names the field by its path and says what is wrong", "[fields]") {
  bj::value v = bj::parse(R"({"s": "x", "qemu": {"pid": "12"}, "history": [{"how": 3}, 7]})");
  Fields f(v, "");

  auto missing = error_of([&] { f.str("id"); });
  CHECK(missing.problem() == Problem::Missing);
  CHECK(missing.path() == "id");
  CHECK(missing.parent().empty());
  CHECK(missing.key() == "id");
  CHECK(std::string(missing.what()) == "'id' is missing");

  auto pid = error_of([&] { f.obj("qemu").int64("pid"); });
  CHECK(pid.problem() == Problem::WrongKind);
  CHECK(pid.path() == "qemu.pid");
  CHECK(pid.parent() == "qemu");
  CHECK(pid.expected() == "an integer");
  CHECK(pid.found() == "a string");
  CHECK(pid.reason() == "is a string, not an integer");
  CHECK(std::string(pid.what()) == "'qemu.pid' is a string, not an integer");

  auto how = error_of([&] { f.arr("history").obj(0).str("how"); });
  CHECK(how.path() == "history[0].how");
  CHECK(how.parent() == "history[0]");

  auto element = error_of([&] { f.arr("history").obj(1); });
  CHECK(element.path() == "history[1]");
  CHECK(element.key() == "[1]");
  CHECK(element.reason() == "is a number, not an object");

  auto deep = error_of([&] { Fields(bj::parse(R"({"return": {}})"), "reply").obj("return").str("status"); });
  CHECK(deep.path() == "reply.return.status");

  auto top = error_of([&] { Fields(bj::parse("[1]"), ""); });
  CHECK(top.problem() == Problem::WrongKind);
  CHECK(top.path().empty());
  CHECK(top.found() == "an array");
  CHECK(std::string(top.what()) == "the top level is an array, not an object");

  auto kind = error_of([&] { f.arr("s"); });
  CHECK(kind.path() == "s");
  CHECK(kind.reason() == "is a string, not an array");
}

TEST_CASE("null is an error or absent, as the reader's policy says", "[fields]") {
  bj::value v = bj::parse(R"({"n": null})");

  Fields strict(v, "reply");
  CHECK(strict.has("n"));
  auto e = error_of([&] { strict.opt_str("n"); });
  CHECK(e.problem() == Problem::WrongKind);
  CHECK(e.reason() == "is null, not a string");
  CHECK(error_of([&] { strict.opt_integer<int>("n"); }).reason() == "is null, not an integer");
  CHECK(strict.value("n").is_null());

  Fields lax(v, "meta", {Null::Absent});
  CHECK_FALSE(lax.has("n"));
  CHECK(lax.find("n") == nullptr);
  CHECK_FALSE(lax.opt_str("n"));
  CHECK_FALSE(lax.opt_integer<int>("n"));
  CHECK_FALSE(lax.opt_obj("n"));
  CHECK_FALSE(lax.opt_strings("n"));
  auto required = error_of([&] { lax.str("n"); });
  CHECK(required.problem() == Problem::Missing);
  CHECK(required.path() == "meta.n");

  // The policy carries into nested readers.
  bj::value nested = bj::parse(R"({"o": {"n": null}, "a": [{"n": null}]})");
  Fields outer(nested, "", {Null::Absent});
  CHECK_FALSE(outer.obj("o").has("n"));
  CHECK_FALSE(outer.arr("a").obj(0).has("n"));
}

TEST_CASE("integers are checked against their limits at both ends", "[fields]") {
  bj::value v = bj::parse(R"({"zero": 0, "one": 1, "max": 1024, "over": 1025, "neg": -1,
    "u16": 65535, "u16over": 65536, "i64min": -9223372036854775808, "i64max": 9223372036854775807,
    "u64max": 18446744073709551615, "half": 1.5, "two": 2.0, "text": "3"})");
  Fields f(v, "");
  CHECK(f.integer<unsigned>("one", 1, 1024) == 1);
  CHECK(f.integer<unsigned>("max", 1, 1024) == 1024);
  auto below = error_of([&] { f.integer<unsigned>("zero", 1, 1024); });
  CHECK(below.problem() == Problem::OutOfRange);
  CHECK(below.found() == "0");
  CHECK(std::string(below.what()) == "'zero' is out of range (0)");
  CHECK(error_of([&] { f.integer<unsigned>("over", 1, 1024); }).found() == "1025");

  CHECK(f.integer<std::uint16_t>("u16") == 65535);
  CHECK(error_of([&] { f.integer<std::uint16_t>("u16over"); }).problem() == Problem::OutOfRange);
  CHECK(error_of([&] { f.integer<unsigned>("neg"); }).problem() == Problem::OutOfRange);
  CHECK(f.integer<int>("neg") == -1);

  CHECK(f.int64("i64min") == std::numeric_limits<std::int64_t>::min());
  CHECK(f.int64("i64max") == std::numeric_limits<std::int64_t>::max());
  CHECK(f.opt_integer<int>("one", 1, 127) == 1);
  CHECK(error_of([&] { f.opt_integer<int>("max", 1, 127); }).problem() == Problem::OutOfRange);
  CHECK(error_of([&] { f.opt_integer<int>("zero", 1, 127); }).problem() == Problem::OutOfRange);

  // Non-integers are of the wrong kind, whatever their value.
  CHECK(error_of([&] { f.int64("half"); }).reason() == "is a number, not an integer");
  CHECK(error_of([&] { f.int64("two"); }).problem() == Problem::WrongKind);
  CHECK(error_of([&] { f.int64("text"); }).reason() == "is a string, not an integer");
}

TEST_CASE("uint64 and int64 are told apart by range, not by how they were read", "[fields]") {
  bj::value v = bj::parse(R"({"u64max": 18446744073709551615, "i64max": 9223372036854775807,
    "neg": -1, "small": 7})");
  Fields f(v, "");
  CHECK(f.integer<std::uint64_t>("u64max") == std::numeric_limits<std::uint64_t>::max());
  CHECK(f.integer<std::uint64_t>("i64max") == 9223372036854775807ULL);
  CHECK(f.integer<std::uint64_t>("small") == 7);
  auto e = error_of([&] { f.int64("u64max"); });
  CHECK(e.problem() == Problem::OutOfRange);
  CHECK(e.found() == "18446744073709551615");
  CHECK(error_of([&] { f.integer<std::uint64_t>("neg"); }).problem() == Problem::OutOfRange);
  CHECK(f.integer<long long>("small") == 7);
}

TEST_CASE("arrays of strings name the element that is not one", "[fields]") {
  bj::value v = bj::parse(R"({"argv": ["sh", "-c"], "bad": ["sh", 3], "text": "sh", "empty": []})");
  Fields f(v, "");
  CHECK(f.strings("argv") == std::vector<std::string>{"sh", "-c"});
  CHECK(f.strings("empty").empty());
  auto element = error_of([&] { f.strings("bad"); });
  CHECK(element.path() == "bad[1]");
  CHECK(element.reason() == "is a number, not a string");
  auto whole = error_of([&] { f.strings("text", "an array of strings"); });
  CHECK(whole.path() == "text");
  CHECK(whole.reason() == "is a string, not an array of strings");
  CHECK(f.opt_strings("argv")->size() == 2);

  Items items(v.as_object().at("argv"), "argv");
  CHECK(items.path_of(1) == "argv[1]");
  CHECK(items.str(0) == "sh");
  CHECK(error_of([&] { items.obj(0); }).reason() == "is a string, not an object");
}

namespace {
enum class Mode { On, Off };
constexpr auto kModes = avm::json::enum_table<Mode>({{Mode::On, "on"}, {Mode::Off, "off"}});
}  // namespace

TEST_CASE("a name read against an enum table, and an unknown one", "[fields]") {
  bj::value v = bj::parse(R"({"status": {"mode": "off", "bad": "dim", "num": 1}})");
  Fields status = Fields(v, "").obj("status");
  CHECK(status.enumerated("mode", kModes) == Mode::Off);
  CHECK(status.opt_enumerated("absent", kModes) == std::nullopt);
  auto e = error_of([&] { status.enumerated("bad", kModes); });
  CHECK(e.problem() == Problem::Unknown);
  CHECK(std::string(e.what()) == "'status.bad' is unknown: \"dim\"");
  CHECK(error_of([&] { status.enumerated("num", kModes); }).problem() == Problem::WrongKind);
}

namespace {
struct Mine : std::runtime_error {
  using std::runtime_error::runtime_error;
};
[[noreturn]] void raise_mine(const FieldError& e) { throw Mine(std::string("mine: ") + e.what()); }
}  // namespace

TEST_CASE("a policy's raise turns every field error into the caller's own", "[fields]") {
  bj::value v = bj::parse(R"({"a": [1], "o": {}})");
  Policy p{Null::Error, &raise_mine};
  CHECK_THROWS_AS(Fields(bj::value(3), "x", p), Mine);
  Fields f(v, "x", p);
  CHECK_THROWS_WITH(f.str("missing"), "mine: 'x.missing' is missing");
  CHECK_THROWS_AS(f.arr("a").obj(0), Mine);
  CHECK_THROWS_AS(f.obj("o").int64("n"), Mine);
  CHECK_THROWS_AS(f.strings("a"), Mine);
}
