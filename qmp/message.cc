#include "qmp/message.h"

#include <boost/json/serialize.hpp>

#include "json/text.h"
#include "qmp/errors.h"

namespace avm::qmp {

namespace json = boost::json;

std::string make_request(std::string_view command, const json::object& args,
                         std::optional<std::uint64_t> id) {
  json::object o;
  o["execute"] = command;
  if (!args.empty()) o["arguments"] = args;
  if (id) o["id"] = *id;
  return json::serialize(o);
}

std::optional<std::uint64_t> Reply::our_id() const {
  if (!id) return std::nullopt;
  if (id->is_uint64()) return id->get_uint64();
  if (id->is_int64() && id->get_int64() >= 0) return static_cast<std::uint64_t>(id->get_int64());
  return std::nullopt;
}

namespace {

std::string shorten(const json::value& v) {
  std::string s = json::serialize(v);
  if (s.size() > 120) s = s.substr(0, 117) + "...";
  return s;
}

}  // namespace

Message classify(json::value message) {
  if (!message.is_object())
    throw ProtocolError(std::string("a message is ") + avm::json::kind_name(message) + ", not an object");
  json::object& o = message.get_object();
  Message m;
  if (o.contains("QMP")) {
    m.kind = Message::Kind::Greeting;
    m.greeting = std::move(message);
    return m;
  }
  if (o.contains("event")) {
    m.kind = Message::Kind::Event;
    m.event = parse_event(o);
    return m;
  }
  bool has_return = o.contains("return"), has_error = o.contains("error");
  if (has_return == has_error)
    throw ProtocolError("unexpected message (neither a greeting, an event nor a reply): " + shorten(message));
  m.kind = Message::Kind::Reply;
  if (auto* id = o.if_contains("id")) m.reply.id = *id;
  if (has_return) {
    m.reply.ok = true;
    m.reply.result = std::move(o["return"]);
  } else {
    auto err = fields(o["error"], "error reply");
    m.reply.ok = false;
    m.reply.error_class = err.str("class");
    m.reply.error_desc = err.str("desc");
  }
  return m;
}

json::value result_or_throw(Reply reply, std::string_view command, std::string_view peer) {
  if (!reply.ok)
    throw CommandError(std::string(command), std::move(reply.error_class),
                       std::move(reply.error_desc), peer);
  return std::move(reply.result);
}

}  // namespace avm::qmp
