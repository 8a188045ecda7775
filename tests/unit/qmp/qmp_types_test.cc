// The typed commands checked against QEMU's own schema (recorded from the
// qemu-system-x86_64 on this machine), as libvirt's monitor tests do: every
// command we send exists and takes the arguments we give; every reply and
// event field we read is one QEMU defines; RunState lists every state.
#include "qmp/qmp_types.h"

#include <catch2/catch.hpp>
#include <map>
#include <set>

#include "qmp/errors.h"
#include "transcript.h"

using namespace avm::qmp;
namespace json = boost::json;

namespace {

class Schema {
 public:
  Schema() {
    auto t = test::Transcript::load("qmp-schema.txt");
    json::value reply = t.reply_to("query-qmp-schema");
    for (const auto& e : reply.at("return").as_array())
      entries_[std::string(e.at("name").as_string())] = e.as_object();
  }
  const json::object& at(const std::string& name) const {
    auto it = entries_.find(name);
    if (it == entries_.end()) FAIL("the schema has no '" << name << "'");
    return it->second;
  }
  // Members of an object type: name -> required?
  std::map<std::string, bool> members(const std::string& type) const {
    std::map<std::string, bool> out;
    for (const auto& m : at(type).at("members").as_array())
      out[std::string(m.at("name").as_string())] = !m.as_object().contains("default");
    return out;
  }
  std::string member_type(const std::string& type, const std::string& member) const {
    for (const auto& m : at(type).at("members").as_array())
      if (m.at("name").as_string() == member) return std::string(m.at("type").as_string());
    FAIL("type " << type << " has no member " << member);
    return {};
  }
  std::string arg_type(const std::string& command) const { return str(at(command), "arg-type"); }
  std::string ret_type(const std::string& command) const { return str(at(command), "ret-type"); }
  // "[85]" -> "85"
  static std::string element(const std::string& t) {
    return t.size() > 2 && t.front() == '[' ? t.substr(1, t.size() - 2) : t;
  }
  // Checks `args` against the command's arguments: every key known, every required key given.
  void check_args(const std::string& command, const json::object& args, bool extra_ok = false) const {
    INFO("command " << command);
    auto m = members(arg_type(command));
    for (const auto& [k, v] : args)
      if (!extra_ok) CHECK(m.count(std::string(k)) == 1);
    for (const auto& [k, required] : m)
      if (required) CHECK(args.contains(k));
  }

 private:
  static std::string str(const json::object& o, const char* key) { return std::string(o.at(key).as_string()); }
  std::map<std::string, json::object> entries_;
};

const Schema& schema() {
  static const Schema s;
  return s;
}

std::set<std::string> keys(const std::map<std::string, bool>& m) {
  std::set<std::string> out;
  for (const auto& [k, v] : m) out.insert(k);
  return out;
}

}  // namespace

TEST_CASE("RunState covers exactly QEMU's RunState enum", "[qmp_types]") {
  const auto& s = schema();
  std::string status_type = s.member_type(s.ret_type("query-status"), "status");
  std::vector<std::string> qemu;
  for (const auto& v : s.at(status_type).at("values").as_array()) qemu.emplace_back(v.as_string());
  std::vector<std::string> ours;
  for (RunState r : all_run_states()) ours.emplace_back(to_string(r));
  CHECK(ours == qemu);
  for (const auto& name : qemu) CHECK(run_state_from_string(name) != RunState::Unknown);
  CHECK(run_state_from_string("some-new-state") == RunState::Unknown);
}

TEST_CASE("every command the clients send exists in the schema", "[qmp_types]") {
  for (const char* c : {"qmp_capabilities", "query-status", "query-version", "query-name", "query-kvm",
                        "query-chardev", "qom-list", "qom-get", "query-qmp-schema", "system_powerdown",
                        "system_reset", "stop", "cont", "quit", "device_add", "device_del",
                        "human-monitor-command"}) {
    INFO(c);
    CHECK(schema().at(c).at("meta-type") == "command");
  }
}

TEST_CASE("typed arguments match the schema's argument types", "[qmp_types]") {
  const auto& s = schema();
  s.check_args("qom-list", to_args(QomListArgs{"/machine"}));
  s.check_args("qom-get", to_args(QomGetArgs{"/machine", "type"}));
  s.check_args("device_del", to_args(DeviceDelArgs{"net0"}));
  s.check_args("human-monitor-command", to_args(HumanMonitorArgs{"info version", 0}));
  // device_add takes the driver's properties beside its own members.
  json::object add = to_args(DeviceAddArgs{"virtio-net-device", "net0", "virtio-mmio-bus.0", {{"netdev", "n0"}}});
  s.check_args("device_add", add, /*extra_ok=*/true);
  CHECK(add.at("netdev") == "n0");
  CHECK(add.at("bus") == "virtio-mmio-bus.0");
}

TEST_CASE("typed replies read exactly the fields QEMU defines", "[qmp_types]") {
  const auto& s = schema();
  CHECK(keys(s.members(s.ret_type("query-status"))) == std::set<std::string>{"status", "running", "singlestep"});
  CHECK(keys(s.members(s.ret_type("query-version"))) == std::set<std::string>{"qemu", "package"});
  CHECK(keys(s.members(s.member_type(s.ret_type("query-version"), "qemu"))) ==
        std::set<std::string>{"major", "minor", "micro"});
  CHECK(keys(s.members(s.ret_type("query-name"))) == std::set<std::string>{"name"});
  CHECK(keys(s.members(s.ret_type("query-kvm"))) == std::set<std::string>{"enabled", "present"});
  CHECK(keys(s.members(Schema::element(s.ret_type("query-chardev")))) ==
        std::set<std::string>{"label", "filename", "frontend-open"});
  CHECK(keys(s.members(Schema::element(s.ret_type("qom-list")))) ==
        std::set<std::string>{"name", "type", "description", "default-value"});
}

TEST_CASE("typed events read exactly the fields QEMU defines", "[qmp_types]") {
  const auto& s = schema();
  auto data = [&](const std::string& event) { return keys(s.members(s.arg_type(event))); };
  CHECK(data("SHUTDOWN") == std::set<std::string>{"guest", "reason"});
  CHECK(data("RESET") == std::set<std::string>{"guest", "reason"});
  CHECK(data("GUEST_PANICKED") == std::set<std::string>{"action", "info"});
  CHECK(data("DEVICE_DELETED") == std::set<std::string>{"device", "path"});
  for (const char* e : {"STOP", "RESUME", "POWERDOWN"}) {
    INFO(e);
    CHECK(s.at(e).at("meta-type") == "event");
    CHECK(s.arg_type(e) == "0");  // the empty object type
  }
  CHECK(s.members("0").empty());
}

TEST_CASE("StatusInfo keeps a state it does not know", "[qmp_types]") {
  auto st = json::value_to<StatusInfo>(json::value{{"status", "teleporting"}, {"running", false}});
  CHECK(st.status == RunState::Unknown);
  CHECK(st.status_name == "teleporting");
  CHECK_FALSE(st.singlestep);
  CHECK(json::value_from(st).at("status") == "teleporting");
  CHECK_THROWS_WITH(json::value_to<StatusInfo>(json::value{{"running", true}}), "reply has no 'status'");
  CHECK_THROWS_WITH(json::value_to<StatusInfo>(json::value("running")), "reply is a string, not an object");
}

TEST_CASE("the recorded greeting parses", "[qmp_types]") {
  auto t = test::Transcript::load("qmp-session.txt");
  auto g = json::value_to<Greeting>(t.greeting().json);
  CHECK(g.major == 7);
  CHECK(g.package.find("Debian") == 0);
  CHECK_THROWS_AS(json::value_to<Greeting>(json::value{{"QMP", {{"capabilities", json::array{}}}}}), ProtocolError);
}
