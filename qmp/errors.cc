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

TimeoutError::TimeoutError(const std::string& waiting_for, std::chrono::milliseconds waited,
                           std::string hint)
    : Error("timed out after " + std::to_string(waited.count()) + " ms waiting for " + waiting_for,
            std::move(hint)),
      waited_(waited) {}

}  // namespace avm::qmp
