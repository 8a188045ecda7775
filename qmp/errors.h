// The typed errors of the QMP and QGA clients. All are avm::Error, so a
// front end prints what() and hint() without knowing which it got.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <string>
#include <string_view>

#include "json/fields.h"
#include "util/error.h"

namespace avm::qmp {

// The peer answered a command with {"error": {"class": ..., "desc": ...}}.
class CommandError : public Error {
 public:
  // `peer` names who answered ("QEMU", "guest agent") for the message.
  CommandError(std::string command, std::string error_class, std::string desc,
               std::string_view peer = "QEMU");
  const std::string& command() const noexcept { return command_; }
  const std::string& error_class() const noexcept { return class_; }
  const std::string& desc() const noexcept { return desc_; }

 private:
  std::string command_, class_, desc_;
};

// A deadline passed. what() says what was being waited for and for how long.
class TimeoutError : public Error {
 public:
  TimeoutError(const std::string& waiting_for, std::chrono::milliseconds waited,
               std::string hint = {});
  std::chrono::milliseconds waited() const noexcept { return waited_; }

 private:
  std::chrono::milliseconds waited_;
};

// The peer closed the connection (for QMP: QEMU exited, or another client
// took the monitor away).
class ClosedError : public Error {
 public:
  using Error::Error;
};

// Malformed input (not JSON, not an object, a message of the wrong shape, a
// reply missing a field) or an unexpected message. The connection is not
// trusted afterwards: a QMP client closes it, a QGA client resynchronises.
class ProtocolError : public Error {
 public:
  using Error::Error;
};

// The socket could not be connected (missing, refused, not permitted).
class ConnectError : public Error {
 public:
  using Error::Error;
};

// The fields of a JSON value a peer sent, read with qmp's rules: null is a
// value like another (a null where a string belongs is wrong), and every
// json::FieldError is a ProtocolError saying "reply has no 'status'",
// "reply: 'running' is a string, not a boolean", "reply.qemu: 'major' is
// out of range (-1)". `what` names the value ("reply", "event SHUTDOWN data").
avm::json::Fields fields(const boost::json::value& v, std::string what);
avm::json::Fields fields(const boost::json::object& o, std::string what);
// The ProtocolError for a FieldError (the policy's raise; throws it).
[[noreturn]] void raise_protocol_error(const avm::json::FieldError& e);

// Runs `parse` and prefixes any ProtocolError with "<command>: ", as
// libvirt's monitor code does ("query-status: reply has no 'status'").
template <class F>
auto with_context(std::string_view command, F&& parse) -> decltype(parse()) {
  try {
    return parse();
  } catch (const ProtocolError& e) {
    throw ProtocolError(std::string(command) + ": " + e.what(), e.hint());
  }
}

}  // namespace avm::qmp
