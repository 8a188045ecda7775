// The messages of the QMP/QGA wire protocol, without I/O: building a request,
// telling a greeting from a reply from an event, and turning a reply into a
// result or a CommandError. Shared by QmpClient and QgaClient.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <boost/json/value_to.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "json/text.h"
#include "qmp/errors.h"
#include "qmp/events.h"

namespace avm::qmp {

// {"execute": command, "arguments": args (omitted when empty), "id": id}
std::string make_request(std::string_view command, const boost::json::object& args,
                         std::optional<std::uint64_t> id);

struct Reply {
  std::optional<boost::json::value> id;  // absent when QEMU could not read the request's
  bool ok = true;
  boost::json::value result;             // "return" (ok)
  std::string error_class, error_desc;   // "error" (!ok)
  // The id as the integer we sent; nullopt when absent or not ours.
  std::optional<std::uint64_t> our_id() const;
};

struct Message {
  enum class Kind { Greeting, Reply, Event };
  Kind kind = Kind::Reply;
  boost::json::value greeting;  // Kind::Greeting: the whole message
  Reply reply;                  // Kind::Reply
  Event event;                  // Kind::Event (seq not yet assigned)
};

// Classifies one top-level message. Throws ProtocolError for anything that
// is none of the three, or one of them with the wrong shape.
Message classify(boost::json::value message);

// The reply's "return" value, or a CommandError for an "error" reply.
// `peer` names who answered in the error ("QEMU", "guest agent").
boost::json::value result_or_throw(Reply reply, std::string_view command,
                                   std::string_view peer = "QEMU");

// A command's result as T (Boost.JSON value_to), or as a list of T; a
// ProtocolError names the command ("query-status: reply has no 'status'").
template <class T>
T typed(std::string_view command, const boost::json::value& v) {
  return with_context(command, [&] { return boost::json::value_to<T>(v); });
}

template <class T>
std::vector<T> typed_list(std::string_view command, const boost::json::value& v) {
  return with_context(command, [&] {
    if (!v.is_array())
      throw ProtocolError(std::string("reply is ") + avm::json::kind_name(v) + ", not an array");
    std::vector<T> out;
    for (const auto& item : v.get_array()) out.push_back(boost::json::value_to<T>(item));
    return out;
  });
}

}  // namespace avm::qmp
