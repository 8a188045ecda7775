#include "qmp/json_text.h"

#include <boost/json/serialize.hpp>

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

}  // namespace avm::qmp
