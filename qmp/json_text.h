// JSON as text for people: indented (QEMU's replies are one long line).
#pragma once

#include <boost/json/value.hpp>
#include <string>

namespace avm::qmp {

// Two-space indented JSON, keys in the order QEMU sent them; empty objects
// and arrays stay "{}" and "[]". Strings are escaped as JSON requires.
std::string pretty_json(const boost::json::value& v, int indent = 2);

}  // namespace avm::qmp
