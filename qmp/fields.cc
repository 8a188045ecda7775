#include "qmp/fields.h"

#include "qmp/errors.h"

namespace avm::qmp {

namespace json = boost::json;

const char* kind_name(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null: return "null";
    case json::kind::bool_: return "a boolean";
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_: return "a number";
    case json::kind::string: return "a string";
    case json::kind::array: return "an array";
    case json::kind::object: return "an object";
  }
  return "?";
}

Fields::Fields(const json::value& v, std::string what) : obj_(v.if_object()), what_(std::move(what)) {
  if (!obj_) throw ProtocolError(what_ + " is " + kind_name(v) + ", not an object");
}

bool Fields::has(std::string_view key) const { return obj_->contains(key); }

void Fields::wrong(std::string_view key, const char* expected) const {
  throw ProtocolError(what_ + ": '" + std::string(key) + "' is " + kind_name(value(key)) +
                      ", not " + expected);
}

const json::value& Fields::value(std::string_view key) const {
  auto it = obj_->find(key);
  if (it == obj_->end()) throw ProtocolError(what_ + " has no '" + std::string(key) + "'");
  return it->value();
}

std::string Fields::str(std::string_view key) const {
  const auto& v = value(key);
  if (!v.is_string()) wrong(key, "a string");
  return std::string(v.get_string());
}

bool Fields::boolean(std::string_view key) const {
  const auto& v = value(key);
  if (!v.is_bool()) wrong(key, "a boolean");
  return v.get_bool();
}

std::int64_t Fields::int64(std::string_view key) const {
  const auto& v = value(key);
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64() && v.get_uint64() <= static_cast<std::uint64_t>(INT64_MAX))
    return static_cast<std::int64_t>(v.get_uint64());
  wrong(key, "an integer");
}

const json::object& Fields::obj(std::string_view key) const {
  const auto& v = value(key);
  if (!v.is_object()) wrong(key, "an object");
  return v.get_object();
}

const json::array& Fields::arr(std::string_view key) const {
  const auto& v = value(key);
  if (!v.is_array()) wrong(key, "an array");
  return v.get_array();
}

std::optional<std::string> Fields::opt_str(std::string_view key) const {
  if (!has(key)) return std::nullopt;
  return str(key);
}
std::optional<bool> Fields::opt_bool(std::string_view key) const {
  if (!has(key)) return std::nullopt;
  return boolean(key);
}
std::optional<std::int64_t> Fields::opt_int64(std::string_view key) const {
  if (!has(key)) return std::nullopt;
  return int64(key);
}
const json::object* Fields::opt_obj(std::string_view key) const {
  if (!has(key)) return nullptr;
  return &obj(key);
}
const json::array* Fields::opt_arr(std::string_view key) const {
  if (!has(key)) return nullptr;
  return &arr(key);
}

}  // namespace avm::qmp
