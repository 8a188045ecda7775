// Typed access to the fields of a JSON object, with errors that say what is
// missing: "reply has no 'status'", "'running' is not a boolean". The
// typed commands prefix the command's name ("query-status: reply has no
// 'status'"), as libvirt's monitor code does.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace avm::qmp {

class Fields {
 public:
  // `what` names the object in errors ("reply", "event SHUTDOWN").
  // Throws ProtocolError when `v` is not an object.
  Fields(const boost::json::value& v, std::string what);
  Fields(const boost::json::object& o, std::string what) : obj_(&o), what_(std::move(what)) {}

  const boost::json::object& object() const noexcept { return *obj_; }
  bool has(std::string_view key) const;

  const boost::json::value& value(std::string_view key) const;  // required, any kind
  std::string str(std::string_view key) const;
  bool boolean(std::string_view key) const;
  std::int64_t int64(std::string_view key) const;
  const boost::json::object& obj(std::string_view key) const;
  const boost::json::array& arr(std::string_view key) const;

  std::optional<std::string> opt_str(std::string_view key) const;
  std::optional<bool> opt_bool(std::string_view key) const;
  std::optional<std::int64_t> opt_int64(std::string_view key) const;
  const boost::json::object* opt_obj(std::string_view key) const;
  const boost::json::array* opt_arr(std::string_view key) const;

 private:
  [[noreturn]] void wrong(std::string_view key, const char* expected) const;
  const boost::json::object* obj_;
  std::string what_;
};

// "object", "string", "null"... for messages.
const char* kind_name(const boost::json::value& v);

// Runs `parse` and prefixes any ProtocolError with "<command>: ".
template <class F>
auto with_context(std::string_view command, F&& parse) -> decltype(parse());

}  // namespace avm::qmp

#include "qmp/errors.h"

namespace avm::qmp {
template <class F>
auto with_context(std::string_view command, F&& parse) -> decltype(parse()) {
  try {
    return parse();
  } catch (const ProtocolError& e) {
    throw ProtocolError(std::string(command) + ": " + e.what(), e.hint());
  }
}
}  // namespace avm::qmp
