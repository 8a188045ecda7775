#include "qmp/json_text.h"

#include <boost/json/serialize.hpp>
#include <cmath>
#include <vector>

namespace avm::qmp {

namespace json = boost::json;

namespace {

void write(std::string& out, const json::value& v, int indent, int depth) {
  auto pad = [&](int d) { out.append(static_cast<std::size_t>(d * indent), ' '); };
  if (const auto* o = v.if_object(); o && !o->empty()) {
    out += "{\n";
    bool first = true;
    for (const auto& [k, val] : *o) {
      if (!first) out += ",\n";
      first = false;
      pad(depth + 1);
      out += json::serialize(json::string_view(k));
      out += ": ";
      write(out, val, indent, depth + 1);
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
      write(out, val, indent, depth + 1);
    }
    out += "\n";
    pad(depth);
    out += "]";
  } else {
    out += json::serialize(v);
  }
}

}  // namespace

std::string pretty_json(const json::value& v, int indent) {
  std::string out;
  write(out, v, indent, 0);
  return out;
}

bool finite_numbers(const json::value& root) {
  // Iterative: a peer's value may nest as deep as the framer allows.
  std::vector<const json::value*> todo{&root};
  while (!todo.empty()) {
    const json::value* v = todo.back();
    todo.pop_back();
    switch (v->kind()) {
      case json::kind::double_:
        if (!std::isfinite(v->get_double())) return false;
        break;
      case json::kind::object:
        for (const auto& kv : v->get_object()) todo.push_back(&kv.value());
        break;
      case json::kind::array:
        for (const auto& e : v->get_array()) todo.push_back(&e);
        break;
      default:
        break;
    }
  }
  return true;
}

bool finite_numbers(const json::object& o) {
  for (const auto& kv : o)
    if (!finite_numbers(kv.value())) return false;
  return true;
}

}  // namespace avm::qmp
