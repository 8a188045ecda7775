#include "json/fields.h"

#include <boost/json/serialize.hpp>

#include "json/text.h"

namespace avm::json {

namespace bj = boost::json;

namespace {

std::string reason_for(FieldError::Problem p, const std::string& expected, const std::string& found) {
  switch (p) {
    case FieldError::Problem::Missing: return "is missing";
    case FieldError::Problem::WrongKind: return "is " + found + ", not " + expected;
    case FieldError::Problem::OutOfRange: return "is out of range (" + found + ")";
    case FieldError::Problem::Unknown: return "is unknown: " + found;
  }
  return "is wrong";
}

std::string what_for(const std::string& path, const std::string& reason) {
  return (path.empty() ? std::string("the top level") : "'" + path + "'") + " " + reason;
}

// A value quoted in a message: its JSON text, cut short when long.
std::string shown(const bj::value& v) {
  std::string s = bj::serialize(v);
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

[[noreturn]] void raise(const Policy& policy, FieldError e) {
  if (policy.raise) policy.raise(e);
  throw e;  // also when `raise` returned, which it must not
}

}  // namespace

FieldError::FieldError(Problem problem, std::string parent, std::string key, std::string expected,
                       std::string found)
    : Error(what_for(join_path(parent, key), reason_for(problem, expected, found))),
      problem_(problem),
      parent_(std::move(parent)),
      key_(std::move(key)),
      path_(join_path(parent_, key_)),
      expected_(std::move(expected)),
      found_(std::move(found)),
      reason_(reason_for(problem_, expected_, found_)) {}

std::string join_path(std::string_view parent, std::string_view key) {
  std::string out(parent);
  if (!out.empty() && !key.empty() && key.front() != '[') out += '.';
  out += key;
  return out;
}

// ---- Fields ----

Fields::Fields(const bj::value& v, std::string path, Policy policy)
    : obj_(v.if_object()), path_(std::move(path)), policy_(policy) {
  if (!obj_) wrong_kind("", "an object", v);
}

const bj::value* Fields::find(std::string_view key) const {
  auto it = obj_->find(key);
  if (it == obj_->end()) return nullptr;
  if (policy_.null == Null::Absent && it->value().is_null()) return nullptr;
  return &it->value();
}

const bj::value& Fields::value(std::string_view key) const {
  const bj::value* v = find(key);
  if (!v) fail(FieldError::Problem::Missing, key, {}, {});
  return *v;
}

std::string Fields::str(std::string_view key) const {
  const bj::value& v = value(key);
  if (!v.is_string()) wrong_kind(key, "a string", v);
  return std::string(v.get_string());
}

bool Fields::boolean(std::string_view key) const {
  const bj::value& v = value(key);
  if (!v.is_bool()) wrong_kind(key, "a boolean", v);
  return v.get_bool();
}

Fields Fields::obj(std::string_view key) const {
  const bj::value& v = value(key);
  if (!v.is_object()) wrong_kind(key, "an object", v);
  return Fields(v.get_object(), path_of(key), policy_);
}

Items Fields::arr(std::string_view key) const { return Items(value(key), path_of(key), policy_); }

std::vector<std::string> Fields::strings(std::string_view key, const char* expected) const {
  return Items(value(key), path_of(key), policy_, expected).strings();
}

std::optional<std::string> Fields::opt_str(std::string_view key) const {
  if (!has(key)) return std::nullopt;
  return str(key);
}

std::optional<bool> Fields::opt_bool(std::string_view key) const {
  if (!has(key)) return std::nullopt;
  return boolean(key);
}

std::optional<Fields> Fields::opt_obj(std::string_view key) const {
  if (!has(key)) return std::nullopt;
  return obj(key);
}

std::optional<Items> Fields::opt_arr(std::string_view key) const {
  if (!has(key)) return std::nullopt;
  return arr(key);
}

std::optional<std::vector<std::string>> Fields::opt_strings(std::string_view key,
                                                            const char* expected) const {
  if (!has(key)) return std::nullopt;
  return strings(key, expected);
}

void Fields::fail(FieldError::Problem problem, std::string_view key, std::string expected,
                  std::string found) const {
  raise(policy_, FieldError(problem, path_, std::string(key), std::move(expected), std::move(found)));
}

void Fields::wrong_kind(std::string_view key, const char* expected, const bj::value& found) const {
  fail(FieldError::Problem::WrongKind, key, expected, kind_name(found));
}

void Fields::out_of_range(std::string_view key, const bj::value& found) const {
  fail(FieldError::Problem::OutOfRange, key, {}, shown(found));
}

void Fields::unknown(std::string_view key, const bj::value& found) const {
  fail(FieldError::Problem::Unknown, key, {}, shown(found));
}

// ---- Items ----

Items::Items(const bj::value& v, std::string path, Policy policy, const char* expected)
    : arr_(v.if_array()), path_(std::move(path)), policy_(policy) {
  if (!arr_) raise(policy_, FieldError(FieldError::Problem::WrongKind, path_, {}, expected, kind_name(v)));
}

namespace {

// "[3]", built in steps: GCC 12 warns (-Wrestrict, wrongly) on "[" + ... + "]".
std::string index_key(std::size_t i) {
  std::string key = "[";
  key += std::to_string(i);
  key += ']';
  return key;
}

}  // namespace

std::string Items::path_of(std::size_t i) const { return join_path(path_, index_key(i)); }

std::string Items::str(std::size_t i) const {
  const bj::value& v = value(i);
  if (!v.is_string()) wrong_kind(i, "a string", v);
  return std::string(v.get_string());
}

Fields Items::obj(std::size_t i) const {
  const bj::value& v = value(i);
  if (!v.is_object()) wrong_kind(i, "an object", v);
  return Fields(v.get_object(), path_of(i), policy_);
}

std::vector<std::string> Items::strings() const {
  std::vector<std::string> out;
  out.reserve(size());
  for (std::size_t i = 0; i < size(); ++i) out.push_back(str(i));
  return out;
}

std::vector<Fields> Items::objects() const {
  std::vector<Fields> out;
  out.reserve(size());
  for (std::size_t i = 0; i < size(); ++i) out.push_back(obj(i));
  return out;
}

void Items::wrong_kind(std::size_t i, const char* expected, const bj::value& found) const {
  raise(policy_, FieldError(FieldError::Problem::WrongKind, path_, index_key(i),
                            expected, kind_name(found)));
}

}  // namespace avm::json
