#include "commands/workback_print.h"

#include <boost/json.hpp>
#include <ostream>

namespace avm::cmd {

namespace json = boost::json;

json::array to_json(const std::vector<sessions::Warning>& warnings) {
  json::array a;
  for (const auto& w : warnings) a.push_back(json::object{{"kind", w.kind}, {"path", w.path}, {"detail", w.detail}});
  return a;
}

json::object to_json(const sessions::DefuseReport& d) {
  json::array removed;
  for (const auto& r : d.removed) removed.push_back(json::value(r));
  return json::object{{"removed", removed}, {"kept", d.kept.empty() ? json::value(nullptr) : json::value(d.kept.string())}};
}

void print_warnings(std::ostream& out, const std::vector<sessions::Warning>& warnings) {
  for (const auto& w : warnings)
    if (w.kind != "defused") out << "warning: " << w.kind << ": " << w.path << ": " << w.detail << "\n";
}

void print_defused(std::ostream& out, const sessions::DefuseReport& d) {
  if (d.removed.empty()) return;
  out << "defused the session repo: removed";
  for (const auto& r : d.removed) out << " " << r;
  out << "\n  (copies kept in " << d.kept.string() << ")\n";
}

void print_running_note(std::ostream& out, const std::string& id) {
  out << "note: session " << id
      << " is running: the agent may change files while they are read; stop it for a stable result\n";
}

}  // namespace avm::cmd
