#include "commands/render.h"

#include "json/text.h"
#include "util/error.h"

#include <algorithm>
#include <boost/json.hpp>
#include <ostream>

namespace avm::cmd {

namespace json = boost::json;

namespace {

// Display width of UTF-8 text: one column per code point.
size_t width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

}  // namespace

void print_table(std::ostream& out, const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows, const std::vector<size_t>& right) {
  std::vector<size_t> w(header.size(), 0);
  for (size_t i = 0; i < header.size(); ++i) w[i] = width(header[i]);
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size() && i < w.size(); ++i) w[i] = std::max(w[i], width(r[i]));
  auto line = [&](const std::vector<std::string>& r) {
    std::string s;
    for (size_t i = 0; i < w.size(); ++i) {
      std::string cell = i < r.size() ? r[i] : "";
      size_t padn = w[i] - width(cell);
      bool is_right = std::find(right.begin(), right.end(), i) != right.end();
      if (is_right) s.append(padn, ' ');
      s += cell;
      if (i + 1 < w.size()) {
        if (!is_right) s.append(padn, ' ');
        s += "  ";
      }
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    out << s << "\n";
  };
  line(header);
  for (const auto& r : rows) line(r);
}

json::object parse_command_arguments(const std::string& text, const std::string& command) {
  if (text.empty()) return {};
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object())
    throw Error("the arguments to '" + command + "' must be a JSON object, got: " + text,
                "quote them for the shell, e.g. '{\"path\": \"/machine\"}'");
  return std::move(v.get_object());
}

void print_json(std::ostream& out, const json::value& v) { out << avm::json::pretty_json(v) << "\n"; }

}  // namespace avm::cmd
