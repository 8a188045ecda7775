// What diff, export and push print about the agent's work: warnings about
// risky changes and what defusing removed, as text and JSON.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <iosfwd>
#include <vector>

#include "sessions/workback.h"

namespace avm::cmd {

boost::json::array to_json(const std::vector<sessions::Warning>& warnings);
boost::json::object to_json(const sessions::DefuseReport& d);
// "warning: ..." lines, then where the removed config and hooks were kept.
void print_warnings(std::ostream& out, const std::vector<sessions::Warning>& warnings);
void print_defused(std::ostream& out, const sessions::DefuseReport& d);
// The note for a session whose VM runs while its files are read.
void print_running_note(std::ostream& out, const std::string& id);

}  // namespace avm::cmd
