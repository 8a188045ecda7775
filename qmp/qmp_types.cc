#include "qmp/qmp_types.h"

#include "json/enum_table.h"
#include "qmp/errors.h"

namespace avm::qmp {

namespace json = boost::json;

namespace {

constexpr auto kRunStates = avm::json::enum_table<RunState>({
    {RunState::Debug, "debug"},
    {RunState::InMigrate, "inmigrate"},
    {RunState::InternalError, "internal-error"},
    {RunState::IoError, "io-error"},
    {RunState::Paused, "paused"},
    {RunState::PostMigrate, "postmigrate"},
    {RunState::Prelaunch, "prelaunch"},
    {RunState::FinishMigrate, "finish-migrate"},
    {RunState::RestoreVm, "restore-vm"},
    {RunState::Running, "running"},
    {RunState::SaveVm, "save-vm"},
    {RunState::Shutdown, "shutdown"},
    {RunState::Suspended, "suspended"},
    {RunState::Watchdog, "watchdog"},
    {RunState::GuestPanicked, "guest-panicked"},
    {RunState::Colo, "colo"},
});
static_assert(kRunStates.unique());

int small_int(const avm::json::Fields& f, std::string_view key) {
  return f.integer<int>(key, 0, 1'000'000);
}

}  // namespace

std::string_view to_string(RunState s) { return kRunStates.to_string(s); }

RunState run_state_from_string(std::string_view name) {
  return kRunStates.from_string(name).value_or(RunState::Unknown);
}

const std::vector<RunState>& all_run_states() {
  static const std::vector<RunState> all = [] {
    std::vector<RunState> v;
    for (const auto& r : kRunStates) v.push_back(r.first);
    return v;
  }();
  return all;
}

Greeting tag_invoke(json::value_to_tag<Greeting>, const json::value& v) {
  auto top = fields(v, "greeting");
  auto qmp = top.obj("QMP");
  auto version = qmp.obj("version");
  auto qemu = version.obj("qemu");
  Greeting g;
  g.major = small_int(qemu, "major");
  g.minor = small_int(qemu, "minor");
  g.micro = small_int(qemu, "micro");
  g.package = version.str("package");
  g.capabilities = qmp.strings("capabilities");
  return g;
}

StatusInfo tag_invoke(json::value_to_tag<StatusInfo>, const json::value& v) {
  auto f = fields(v, "reply");
  StatusInfo s;
  s.status_name = f.str("status");
  s.status = run_state_from_string(s.status_name);
  s.running = f.boolean("running");
  s.singlestep = f.opt_bool("singlestep").value_or(false);
  return s;
}

void tag_invoke(json::value_from_tag, json::value& v, const StatusInfo& s) {
  v = json::object{{"status", s.status_name}, {"running", s.running}, {"singlestep", s.singlestep}};
}

VersionInfo tag_invoke(json::value_to_tag<VersionInfo>, const json::value& v) {
  auto f = fields(v, "reply");
  auto qemu = f.obj("qemu");
  return {small_int(qemu, "major"), small_int(qemu, "minor"), small_int(qemu, "micro"),
          f.str("package")};
}

NameInfo tag_invoke(json::value_to_tag<NameInfo>, const json::value& v) {
  return {fields(v, "reply").opt_str("name")};
}

KvmInfo tag_invoke(json::value_to_tag<KvmInfo>, const json::value& v) {
  auto f = fields(v, "reply");
  return {f.boolean("enabled"), f.boolean("present")};
}

ObjectProperty tag_invoke(json::value_to_tag<ObjectProperty>, const json::value& v) {
  auto f = fields(v, "property");
  ObjectProperty p;
  p.name = f.str("name");
  p.type = f.str("type");
  p.description = f.opt_str("description");
  if (f.has("default-value")) p.default_value = f.value("default-value");
  return p;
}

ChardevInfo tag_invoke(json::value_to_tag<ChardevInfo>, const json::value& v) {
  auto f = fields(v, "chardev");
  return {f.str("label"), f.str("filename"), f.boolean("frontend-open")};
}

void tag_invoke(json::value_from_tag, json::value& v, const QomListArgs& a) {
  v = json::object{{"path", a.path}};
}

void tag_invoke(json::value_from_tag, json::value& v, const QomGetArgs& a) {
  v = json::object{{"path", a.path}, {"property", a.property}};
}

void tag_invoke(json::value_from_tag, json::value& v, const DeviceAddArgs& a) {
  json::object o = a.props;
  o["driver"] = a.driver;
  o["id"] = a.id;
  if (a.bus) o["bus"] = *a.bus;
  v = std::move(o);
}

void tag_invoke(json::value_from_tag, json::value& v, const DeviceDelArgs& a) {
  v = json::object{{"id", a.id}};
}

void tag_invoke(json::value_from_tag, json::value& v, const HumanMonitorArgs& a) {
  json::object o{{"command-line", a.command_line}};
  if (a.cpu_index) o["cpu-index"] = *a.cpu_index;
  v = std::move(o);
}

}  // namespace avm::qmp
