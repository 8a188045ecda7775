// JSON as text: indented for people, whether a value can be written as JSON
// text at all, and the name of a value's kind for messages.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <string>

namespace avm::json {

// Two-space indented JSON, keys in the order they were read; empty objects
// and arrays stay "{}" and "[]"; strings escaped as JSON requires. No
// trailing newline: a caller writing a file or a terminal line adds it.
std::string pretty_json(const boost::json::value& v);

// False when `v` holds a number JSON text cannot carry. Boost.JSON 1.81 reads
// a number beyond a double's range (1e400) as infinity and writes infinity as
// `Infinity`, which is not JSON: a value read from a peer or a file and
// written again (printed, stored) would no longer parse. Readers of JSON from
// outside refuse such values (the framer, the image manifest).
bool finite_numbers(const boost::json::value& v);
bool finite_numbers(const boost::json::object& o);

// "null", "a boolean", "a number", "a string", "an array", "an object".
const char* kind_name(const boost::json::value& v);

}  // namespace avm::json
