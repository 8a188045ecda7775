#include "json/text.h"

#include <boost/json/serialize.hpp>
#include <cmath>
#include <vector>

namespace avm::json {

namespace bj = boost::json;

namespace {

void write(std::string& out, const bj::value& v, int depth) {
  auto pad = [&](int d) { out.append(static_cast<std::size_t>(d) * 2, ' '); };
  if (const auto* o = v.if_object(); o && !o->empty()) {
    out += "{\n";
    bool first = true;
    for (const auto& [k, val] : *o) {
      if (!first) out += ",\n";
      first = false;
      pad(depth + 1);
      out += bj::serialize(bj::string_view(k));
      out += ": ";
      write(out, val, depth + 1);
    }
    out += "\n";
    pad(depth);
    out += "}";
  } else if (const auto* a = v.if_array(); a && !a->empty()) {
    out += "[\n";
    bool first = true;
    for (const auto& val : *a) {
      if (!first) out += ",\n";
      first = false;
      pad(depth + 1);
      write(out, val, depth + 1);
    }
    out += "\n";
    pad(depth);
    out += "]";
  } else {
    out += bj::serialize(v);
  }
}

}  // namespace

std::string pretty_json(const bj::value& v) {
  std::string out;
  write(out, v, 0);
  return out;
}

bool finite_numbers(const bj::value& root) {
  // Iterative: a peer's value may nest as deep as its parser allowed.
  std::vector<const bj::value*> todo{&root};
  while (!todo.empty()) {
    const bj::value* v = todo.back();
    todo.pop_back();
    switch (v->kind()) {
      case bj::kind::double_:
        if (!std::isfinite(v->get_double())) return false;
        break;
      case bj::kind::object:
        for (const auto& kv : v->get_object()) todo.push_back(&kv.value());
        break;
      case bj::kind::array:
        for (const auto& e : v->get_array()) todo.push_back(&e);
        break;
      default:
        break;
    }
  }
  return true;
}

bool finite_numbers(const bj::object& o) {
  for (const auto& kv : o)
    if (!finite_numbers(kv.value())) return false;
  return true;
}

const char* kind_name(const bj::value& v) {
  switch (v.kind()) {
    case bj::kind::null: return "null";
    case bj::kind::bool_: return "a boolean";
    case bj::kind::int64:
    case bj::kind::uint64:
    case bj::kind::double_: return "a number";
    case bj::kind::string: return "a string";
    case bj::kind::array: return "an array";
    case bj::kind::object: return "an object";
  }
  return "?";
}

}  // namespace avm::json
