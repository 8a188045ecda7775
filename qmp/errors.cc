#include "qmp/errors.h"

namespace avm::qmp {

namespace {

std::string command_error_what(const std::string& command, const std::string& cls,
                               const std::string& desc, std::string_view peer) {
  return command + ": " + std::string(peer) + " replied with error " + cls + ": " + desc;
}

std::string command_error_hint(const std::string& cls, std::string_view peer) {
  if (cls == "CommandNotFound" && peer == "QEMU")
    return "this QEMU does not have that command; 'agent-vm qmp <socket> query-commands' lists what it has";
  if (cls == "CommandNotFound")
    return "the agent does not have that command, or it is disabled; "
           "'agent-vm qga <socket> guest-info' lists what it has";
  if (cls == "DeviceNotFound") return "'agent-vm qmp <socket> qom-list '{\"path\": \"/machine/peripheral\"}'' lists the devices";
  return {};
}

}  // namespace

CommandError::CommandError(std::string command, std::string error_class, std::string desc,
                           std::string_view peer)
    : Error(command_error_what(command, error_class, desc, peer), command_error_hint(error_class, peer)),
      command_(std::move(command)),
      class_(std::move(error_class)),
      desc_(std::move(desc)) {}

void raise_protocol_error(const avm::json::FieldError& e) {
  using Problem = avm::json::FieldError::Problem;
  if (e.problem() == Problem::Missing) throw ProtocolError(e.parent() + " has no '" + e.key() + "'");
  // The value itself ("reply is a string, not an object") or an element.
  if (e.key().empty() || e.key().front() == '[') throw ProtocolError(e.path() + " " + e.reason());
  throw ProtocolError(e.parent() + ": '" + e.key() + "' " + e.reason());
}

namespace {
constexpr avm::json::Policy kPeer{avm::json::Null::Error, &raise_protocol_error};
}  // namespace

avm::json::Fields fields(const boost::json::value& v, std::string what) {
  return avm::json::Fields(v, std::move(what), kPeer);
}

avm::json::Fields fields(const boost::json::object& o, std::string what) {
  return avm::json::Fields(o, std::move(what), kPeer);
}

TimeoutError::TimeoutError(const std::string& waiting_for, std::chrono::milliseconds waited,
                           std::string hint)
    : Error("timed out after " + std::to_string(waited.count()) + " ms waiting for " + waiting_for,
            std::move(hint)),
      waited_(waited) {}

}  // namespace avm::qmp
