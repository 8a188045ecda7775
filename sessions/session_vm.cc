#include "sessions/session_vm.h"

#include "util/error.h"
#include "util/strings.h"

namespace avm::sessions {

namespace L = avm::launcher;

std::string vm_name(const std::string& id) { return "agent-vm-" + id; }

std::string vm_id_of(const Meta& m) { return m.qemu_pid && m.vm_id ? *m.vm_id : m.id; }

L::NetMode net_mode(const std::string& s) {
  if (s == "restricted" || s == "default") return L::NetMode::Restricted;
  if (s == "full") return L::NetMode::Full;
  if (s == "none") return L::NetMode::Off;
  throw Error("unknown network mode '" + s + "'", "use --net restricted, full or none");
}

std::vector<std::string> egress_command(const SessionPaths& p, const std::filesystem::path& self_exe) {
  return {shell_quote(self_exe.string()), "egress", "--dir", shell_quote(p.host.string())};
}

std::vector<std::string> gateway_command(const SessionPaths& p, const std::filesystem::path& self_exe) {
  return {shell_quote(self_exe.string()), "gateway", "--dir", shell_quote(p.host.string())};
}

L::VmSpec session_vm_spec(const Meta& m, const SessionPaths& p, const HostFacts& host, std::uint16_t ssh_port) {
  L::NetMode net = net_mode(m.net);
  L::VmSpec spec;
  spec.name = vm_name(m.id);
  spec.qemu = host.qemu;
  spec.arch = host.arch;
  spec.accel = host.accel;
  spec.cpus = m.cpus;
  spec.memory_mib = m.memory_mib;
  spec.kernel = host.kernel;
  spec.initrd = host.initrd;
  spec.rootfs = host.rootfs;
  spec.cmdline = host.cmdline;
  if (host.accel == L::Accel::Tcg) spec.tsc_khz = host.tsc_khz;
  spec.share_dir = p.dir;
  spec.share_model = L::share_model_for_uid(host.uid);
  spec.ssh_port = ssh_port;
  spec.net = net;
  if (net == L::NetMode::Restricted) spec.egress_cmd = egress_command(p, host.self_exe);
  if (net != L::NetMode::Off) spec.gateway_cmd = gateway_command(p, host.self_exe);
  spec.qmp_socket = p.qmp_socket();
  spec.observe_socket = L::observe_socket_for(p.qmp_socket());
  spec.agent_port_log = L::agent_port_log_for(p.qmp_socket());
  spec.qga_socket = p.qga_socket();
  spec.console_log = p.console_log();
  spec.pid_file = p.qemu_pid();
  spec.sandbox = host.qemu_sandbox;
  spec.free_page_reporting = host.free_page_reporting;
  // The gateway (and under restricted networking the egress proxy) is
  // started per connection: QEMU must be allowed to spawn it.
  spec.sandbox_allow_spawn = net != L::NetMode::Off;
  return spec;
}

bool free_page_reporting_from_env(const char* value) {
  std::string v = value ? value : "";
  if (v.empty() || v == "on" || v == "1") return true;
  if (v == "off" || v == "0") return false;
  throw Error("AGENT_VM_FREE_PAGE_REPORTING is '" + v + "'", "set it to on or off, or unset it");
}

L::VmHandle vm_handle(const Meta& m, const SessionPaths& p) {
  L::VmHandle h;
  h.name = vm_name(vm_id_of(m));
  h.pid = m.qemu_pid.value_or(-1);
  h.start_time = m.qemu_start_time.value_or(0);
  h.qmp_socket = p.qmp_socket();
  h.observe_socket = L::observe_socket_for(p.qmp_socket());
  h.qga_socket = p.qga_socket();
  h.console_log = p.console_log();
  h.ssh_port = m.ssh_port;
  return h;
}

}  // namespace avm::sessions
