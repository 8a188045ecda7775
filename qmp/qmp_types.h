// Typed QMP commands: one struct in (where the command takes arguments) and
// one struct out per command, converted with Boost.JSON's value_from and
// value_to. A reply missing a field throws ProtocolError ("reply has no
// 'status'"); QmpClient prefixes the command's name.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <boost/json/value_from.hpp>
#include <boost/json/value_to.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace avm::qmp {

// The QMP greeting: {"QMP": {"version": {"qemu": {...}, "package": ...}, "capabilities": [...]}}.
struct Greeting {
  int major = 0, minor = 0, micro = 0;
  std::string package;
  std::vector<std::string> capabilities;
};
Greeting tag_invoke(boost::json::value_to_tag<Greeting>, const boost::json::value& v);

// Every RunState QEMU 7.2 defines (checked against the recorded schema in a
// unit test), plus Unknown for a state a newer QEMU adds.
enum class RunState {
  Debug,
  InMigrate,
  InternalError,
  IoError,
  Paused,
  PostMigrate,
  Prelaunch,
  FinishMigrate,
  RestoreVm,
  Running,
  SaveVm,
  Shutdown,
  Suspended,
  Watchdog,
  GuestPanicked,
  Colo,
  Unknown,
};
// QEMU's name for it ("guest-panicked"); "unknown" for Unknown.
std::string_view to_string(RunState s);
// Unknown for a name not in the list.
RunState run_state_from_string(std::string_view name);
// Every state but Unknown, in QEMU's order.
const std::vector<RunState>& all_run_states();

// query-status
struct StatusInfo {
  RunState status = RunState::Unknown;
  bool running = false;
  std::string status_name;  // as QEMU sent it (kept when status is Unknown)
  bool singlestep = false;  // deprecated by QEMU; false when absent
};
StatusInfo tag_invoke(boost::json::value_to_tag<StatusInfo>, const boost::json::value& v);
void tag_invoke(boost::json::value_from_tag, boost::json::value& v, const StatusInfo& s);

// query-version
struct VersionInfo {
  int major = 0, minor = 0, micro = 0;
  std::string package;
};
VersionInfo tag_invoke(boost::json::value_to_tag<VersionInfo>, const boost::json::value& v);

// query-name: the -name given to QEMU, if any.
struct NameInfo {
  std::optional<std::string> name;
};
NameInfo tag_invoke(boost::json::value_to_tag<NameInfo>, const boost::json::value& v);

// query-kvm
struct KvmInfo {
  bool enabled = false;  // the VM runs on KVM
  bool present = false;  // KVM support is compiled in
};
KvmInfo tag_invoke(boost::json::value_to_tag<KvmInfo>, const boost::json::value& v);

// qom-list (one entry per property)
struct ObjectProperty {
  std::string name;
  std::string type;  // "string", "child<container>", "link<...>"
  std::optional<std::string> description;
  std::optional<boost::json::value> default_value;
};
ObjectProperty tag_invoke(boost::json::value_to_tag<ObjectProperty>, const boost::json::value& v);

// query-chardev (one entry per character device)
struct ChardevInfo {
  std::string label;
  std::string filename;  // "unix:/path,server=on", "pty:/dev/pts/3"
  bool frontend_open = false;
};
ChardevInfo tag_invoke(boost::json::value_to_tag<ChardevInfo>, const boost::json::value& v);

// Arguments of the commands that take some.
struct QomListArgs {
  std::string path;
};
void tag_invoke(boost::json::value_from_tag, boost::json::value& v, const QomListArgs& a);

struct QomGetArgs {
  std::string path;
  std::string property;
};
void tag_invoke(boost::json::value_from_tag, boost::json::value& v, const QomGetArgs& a);

// device_add: driver and id, an optional bus, and the driver's own
// properties (QEMU takes them at the same level as "driver").
struct DeviceAddArgs {
  std::string driver;
  std::string id;
  std::optional<std::string> bus;
  boost::json::object props;
};
void tag_invoke(boost::json::value_from_tag, boost::json::value& v, const DeviceAddArgs& a);

struct DeviceDelArgs {
  std::string id;
};
void tag_invoke(boost::json::value_from_tag, boost::json::value& v, const DeviceDelArgs& a);

struct HumanMonitorArgs {
  std::string command_line;
  std::optional<int> cpu_index;
};
void tag_invoke(boost::json::value_from_tag, boost::json::value& v, const HumanMonitorArgs& a);

// value_from(args) as the object execute() wants.
template <class T>
boost::json::object to_args(const T& args) {
  return boost::json::value_from(args).as_object();
}

}  // namespace avm::qmp
