// The one place that renders tables and JSON for the commands.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <iosfwd>
#include <string>
#include <vector>

namespace avm::cmd {

// A plain-text table: a header row, then rows, columns padded to fit.
// Columns listed in `right` are right-aligned.
void print_table(std::ostream& out, const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows,
                 const std::vector<size_t>& right = {});

// Pretty-printed JSON with a trailing newline (2-space indent).
void print_json(std::ostream& out, const boost::json::value& v);

// The [json-arguments] of `agent-vm qmp/qga`: empty, or a JSON object;
// avm::Error naming `command` otherwise.
boost::json::object parse_command_arguments(const std::string& text, const std::string& command);

}  // namespace avm::cmd
