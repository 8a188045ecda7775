// JSON as text: indented for people (QEMU's replies are one long line), and
// whether a value can be written as JSON text at all.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <string>

namespace avm::qmp {

// Two-space indented JSON, keys in the order QEMU sent them; empty objects
// and arrays stay "{}" and "[]". Strings are escaped as JSON requires.
std::string pretty_json(const boost::json::value& v, int indent = 2);

// False when `v` holds a number JSON text cannot carry. Boost.JSON 1.81 reads
// a number beyond a double's range (1e400) as infinity and writes infinity as
// `Infinity`, which is not JSON: a value read from a peer or a file and
// written again (printed, stored) would no longer parse. Readers of JSON from
// outside refuse such values (the framer, the image manifest).
bool finite_numbers(const boost::json::value& v);
bool finite_numbers(const boost::json::object& o);

}  // namespace avm::qmp
