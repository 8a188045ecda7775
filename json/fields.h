// The one reader of JSON objects: typed access to fields, with errors that
// name the field by its path ("history[1].how", "qemu.pid",
// "reply.return.status") and say what was wrong (missing, of the wrong
// kind, out of range, an unknown name).
//
//   json::Fields f(value, "reply", {json::Null::Absent});
//   std::string s = f.str("status");
//   unsigned cpus = f.integer<unsigned>("cpus", 1, 1024);
//   for (json::Fields r : f.arr("history").objects()) ...
//
// Every failure is a FieldError. A caller with its own error type (a
// protocol error, a corrupt file) translates in one place: a Policy's
// `raise` turns the FieldError into its own exception, or the caller catches
// FieldError where it parses.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "json/enum_table.h"
#include "util/error.h"

namespace avm::json {

class FieldError : public Error {
 public:
  enum class Problem {
    Missing,     // the field is not there (or null, when null means absent)
    WrongKind,   // a string where a number belongs...
    OutOfRange,  // an integer beyond the limits the reader asked for
    Unknown,     // a name that is not one of the names allowed
  };
  // `parent`: path of the object or array holding the value ("" at the top);
  // `key`: "how", "[2]", or "" when the value at `parent` itself is wrong.
  // `expected` names the kind wanted (WrongKind); `found`: the kind found
  // (WrongKind) or the value as JSON text (OutOfRange, Unknown).
  FieldError(Problem problem, std::string parent, std::string key, std::string expected,
             std::string found);

  Problem problem() const noexcept { return problem_; }
  const std::string& parent() const noexcept { return parent_; }
  const std::string& key() const noexcept { return key_; }
  // "history[1].how", "agent_command[2]", "qemu"; "" for the top level.
  const std::string& path() const noexcept { return path_; }
  const std::string& expected() const noexcept { return expected_; }
  const std::string& found() const noexcept { return found_; }
  // "is missing", "is a number, not a string", "is out of range (70000)",
  // "is unknown: \"dancing\"". what() is "'<path>' <reason>".
  const std::string& reason() const noexcept { return reason_; }

 private:
  Problem problem_;
  std::string parent_, key_, path_, expected_, found_, reason_;
};

// "a.b" + "c" -> "a.b.c"; "a" + "[1]" -> "a[1]"; "" + "c" -> "c".
std::string join_path(std::string_view parent, std::string_view key);

// What a null field means to a reader.
enum class Null {
  Error,   // null is a value like another: a field that must be a string is wrong
  Absent,  // null is the same as leaving the field out
};

// Turns a FieldError into the caller's own exception (it must throw).
using Raise = void (*)(const FieldError&);

struct Policy {
  Null null = Null::Error;
  Raise raise = nullptr;  // nullptr: throw the FieldError itself
};

class Items;

// One JSON object and its path. Cheap to copy; refers to the value it reads
// (which must outlive it).
class Fields {
 public:
  // Fails (WrongKind, key "") when `v` is not an object.
  Fields(const boost::json::value& v, std::string path, Policy policy = {});
  Fields(const boost::json::object& o, std::string path, Policy policy = {})
      : obj_(&o), path_(std::move(path)), policy_(policy) {}

  const boost::json::object& object() const noexcept { return *obj_; }
  const std::string& path() const noexcept { return path_; }
  const Policy& policy() const noexcept { return policy_; }
  std::string path_of(std::string_view key) const { return join_path(path_, key); }

  // Present (and, under Null::Absent, not null).
  bool has(std::string_view key) const { return find(key) != nullptr; }
  // The field, or nullptr when it is absent (see has()).
  const boost::json::value* find(std::string_view key) const;

  // Required fields: Missing when absent, WrongKind when of another kind.
  const boost::json::value& value(std::string_view key) const;  // any kind
  std::string str(std::string_view key) const;
  bool boolean(std::string_view key) const;
  // An integer (JSON int64 or uint64) within [min, max]; OutOfRange outside.
  template <class T>
  T integer(std::string_view key, T min = std::numeric_limits<T>::lowest(),
            T max = std::numeric_limits<T>::max()) const;
  std::int64_t int64(std::string_view key) const { return integer<std::int64_t>(key); }
  Fields obj(std::string_view key) const;
  Items arr(std::string_view key) const;
  // An array of strings; `expected` names it in errors.
  std::vector<std::string> strings(std::string_view key,
                                   const char* expected = "an array of strings") const;
  // A string that must be one of the table's names (Unknown otherwise).
  template <class E, std::size_t N>
  E enumerated(std::string_view key, const EnumTable<E, N>& table) const;

  // Optional fields: nullopt when absent, errors as above when present.
  std::optional<std::string> opt_str(std::string_view key) const;
  std::optional<bool> opt_bool(std::string_view key) const;
  template <class T>
  std::optional<T> opt_integer(std::string_view key, T min = std::numeric_limits<T>::lowest(),
                               T max = std::numeric_limits<T>::max()) const;
  std::optional<std::int64_t> opt_int64(std::string_view key) const {
    return opt_integer<std::int64_t>(key);
  }
  std::optional<Fields> opt_obj(std::string_view key) const;
  std::optional<Items> opt_arr(std::string_view key) const;
  std::optional<std::vector<std::string>> opt_strings(
      std::string_view key, const char* expected = "an array of strings") const;
  template <class E, std::size_t N>
  std::optional<E> opt_enumerated(std::string_view key, const EnumTable<E, N>& table) const;

  // Raises the error for field `key` ("" for the object itself) through
  // the policy. For checks of the caller's own.
  [[noreturn]] void fail(FieldError::Problem problem, std::string_view key, std::string expected,
                         std::string found) const;
  [[noreturn]] void wrong_kind(std::string_view key, const char* expected,
                               const boost::json::value& found) const;
  [[noreturn]] void out_of_range(std::string_view key, const boost::json::value& found) const;
  [[noreturn]] void unknown(std::string_view key, const boost::json::value& found) const;

 private:
  template <class T>
  T checked_integer(const boost::json::value& v, std::string_view key, T min, T max) const;

  const boost::json::object* obj_;
  std::string path_;
  Policy policy_;
};

// One JSON array and its path; elements are named "<path>[i]".
class Items {
 public:
  // Fails (WrongKind, key "") when `v` is not an array; `expected` names
  // what was wanted ("an array", "an array of strings").
  Items(const boost::json::value& v, std::string path, Policy policy = {},
        const char* expected = "an array");

  const boost::json::array& array() const noexcept { return *arr_; }
  const std::string& path() const noexcept { return path_; }
  std::size_t size() const noexcept { return arr_->size(); }
  bool empty() const noexcept { return arr_->empty(); }
  std::string path_of(std::size_t i) const;

  const boost::json::value& value(std::size_t i) const { return (*arr_)[i]; }
  std::string str(std::size_t i) const;
  Fields obj(std::size_t i) const;
  // Every element as a string / as an object.
  std::vector<std::string> strings() const;
  std::vector<Fields> objects() const;

  [[noreturn]] void wrong_kind(std::size_t i, const char* expected,
                               const boost::json::value& found) const;

 private:
  const boost::json::array* arr_;
  std::string path_;
  Policy policy_;
};

// ---- templates ----

template <class T>
T Fields::checked_integer(const boost::json::value& v, std::string_view key, T min, T max) const {
  static_assert(std::is_integral_v<T> && !std::is_same_v<T, bool>, "integer<T>: T is an integer type");
  if (v.is_int64()) {
    std::int64_t n = v.get_int64();
    if (std::cmp_greater_equal(n, min) && std::cmp_less_equal(n, max)) return static_cast<T>(n);
  } else if (v.is_uint64()) {
    std::uint64_t n = v.get_uint64();
    if (std::cmp_greater_equal(n, min) && std::cmp_less_equal(n, max)) return static_cast<T>(n);
  } else {
    wrong_kind(key, "an integer", v);
  }
  out_of_range(key, v);
}

template <class T>
T Fields::integer(std::string_view key, T min, T max) const {
  return checked_integer<T>(value(key), key, min, max);
}

template <class T>
std::optional<T> Fields::opt_integer(std::string_view key, T min, T max) const {
  const boost::json::value* v = find(key);
  if (!v) return std::nullopt;
  return checked_integer<T>(*v, key, min, max);
}

template <class E, std::size_t N>
E Fields::enumerated(std::string_view key, const EnumTable<E, N>& table) const {
  std::string name = str(key);
  if (auto e = table.from_string(name)) return *e;
  unknown(key, value(key));
}

template <class E, std::size_t N>
std::optional<E> Fields::opt_enumerated(std::string_view key, const EnumTable<E, N>& table) const {
  if (!has(key)) return std::nullopt;
  return enumerated(key, table);
}

}  // namespace avm::json
