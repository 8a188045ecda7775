#include "sessions/session_vm.h"

#include <algorithm>
#include <catch2/catch.hpp>

#include "util/error.h"

using namespace avm::sessions;
namespace L = avm::launcher;

namespace {

Meta sample_meta() {
  Meta m;
  m.id = "k3f9ab";
  m.cpus = 4;
  m.memory_mib = 1024;
  m.net = "restricted";
  m.allow_hosts = {"api.anthropic.com", "example.org"};
  m.ssh_port = 2230;
  m.qemu_pid = 99;
  m.qemu_start_time = 12345;
  return m;
}

HostFacts sample_host() {
  HostFacts h;
  h.kernel = "/img/vmlinuz";
  h.initrd = "/img/initrd.img";
  h.rootfs = "/img/root.squashfs";
  h.cmdline = "console=ttyS0";
  h.qemu = "/usr/bin/qemu-system-x86_64";
  h.qemu_sandbox = true;
  h.accel = L::Accel::Tcg;
  h.tsc_khz = 2100000;
  h.uid = 1000;
  h.self_exe = "/opt/agent vm/agent-vm";
  return h;
}

}  // namespace

TEST_CASE("a session's spec carries its size, folder, sockets and port", "[session_vm]") {
  SessionPaths p("/s/k3f9ab");
  L::VmSpec s = session_vm_spec(sample_meta(), p, sample_host(), 2231);
  CHECK(s.name == "agent-vm-k3f9ab");
  CHECK(s.qemu == "/usr/bin/qemu-system-x86_64");
  CHECK(s.cpus == 4);
  CHECK(s.memory_mib == 1024);
  CHECK(s.kernel == "/img/vmlinuz");
  CHECK(s.rootfs == "/img/root.squashfs");
  CHECK(s.cmdline == "console=ttyS0");
  CHECK(s.tsc_khz == 2100000ul);
  CHECK(s.share_dir == "/s/k3f9ab");
  CHECK(s.share_model == L::ShareModel::None);
  CHECK(s.ssh_port == 2231);  // the port reserved now, not the one remembered
  CHECK(s.qmp_socket == p.qmp_socket());
  CHECK(s.observe_socket == "/s/k3f9ab/run/qmp-observe.sock");
  CHECK(s.qga_socket == p.qga_socket());
  CHECK(s.console_log == p.console_log());
  CHECK(s.pid_file == p.qemu_pid());
  CHECK(s.sandbox);
  CHECK_NOTHROW(L::qemu_argv(s));
}

TEST_CASE("the per-connection helpers name only the host-only folder, and QEMU may spawn them", "[session_vm]") {
  SessionPaths p("/s/k3f9ab");
  L::VmSpec s = session_vm_spec(sample_meta(), p, sample_host(), 2231);
  CHECK(s.net == L::NetMode::Restricted);
  CHECK(s.sandbox_allow_spawn);
  CHECK(s.egress_cmd == std::vector<std::string>{"'/opt/agent vm/agent-vm'", "egress", "--dir", "/s/.host/k3f9ab"});
  CHECK(s.gateway_cmd == std::vector<std::string>{"'/opt/agent vm/agent-vm'", "gateway", "--dir", "/s/.host/k3f9ab"});
  Meta m = sample_meta();
  m.net = "full";
  L::VmSpec f = session_vm_spec(m, p, sample_host(), 2231);
  CHECK(f.egress_cmd.empty());
  CHECK(f.gateway_cmd == s.gateway_cmd);
  CHECK(f.sandbox_allow_spawn);
  m.net = "none";
  L::VmSpec n = session_vm_spec(m, p, sample_host(), 2231);
  CHECK(n.egress_cmd.empty());
  CHECK(n.gateway_cmd.empty());
  CHECK_FALSE(n.sandbox_allow_spawn);
  CHECK(session_vm_spec(m, p, sample_host(), 2231).net == L::NetMode::Off);
  m.net = "default";  // sessions made before the modes had names
  CHECK(session_vm_spec(m, p, sample_host(), 2231).net == L::NetMode::Restricted);
  m.net = "open";
  CHECK_THROWS_WITH(session_vm_spec(m, p, sample_host(), 2231), Catch::Contains("unknown network mode 'open'"));
}

TEST_CASE("KVM gets no TSC hint, and QEMU as root shares with mapped ownership", "[session_vm]") {
  HostFacts h = sample_host();
  h.accel = L::Accel::Kvm;
  h.uid = 0;
  L::VmSpec s = session_vm_spec(sample_meta(), SessionPaths("/s/x"), h, 2222);
  CHECK(s.accel == L::Accel::Kvm);
  CHECK_FALSE(s.tsc_khz.has_value());
  CHECK(s.share_model == L::ShareModel::MappedXattr);
}

TEST_CASE("a running session's handle comes from meta.json", "[session_vm]") {
  SessionPaths p("/s/k3f9ab");
  L::VmHandle h = vm_handle(sample_meta(), p);
  CHECK(h.name == "agent-vm-k3f9ab");
  CHECK(h.pid == 99);
  CHECK(h.start_time == 12345);
  CHECK(h.ssh_port == 2230);
  CHECK(h.qga_socket == p.qga_socket());
  Meta stopped = sample_meta();
  stopped.qemu_pid.reset();
  stopped.qemu_start_time.reset();
  CHECK(vm_handle(stopped, p).pid == -1);
}

TEST_CASE("a session resumed on a warm-pool VM finds it under the slot's name", "[session_vm]") {
  SessionPaths p("/s/k3f9ab");
  Meta m = sample_meta();
  m.vm_id = "warm01";
  CHECK(vm_id_of(m) == "warm01");
  CHECK(vm_handle(m, p).name == "agent-vm-warm01");
  // Its sockets are the session folder's (the slot's run/ moved in with it).
  CHECK(vm_handle(m, p).qmp_socket == p.qmp_socket());
  // A spec for a cold boot is the session's own name.
  CHECK(session_vm_spec(m, p, sample_host(), 2230).name == "agent-vm-k3f9ab");
  // Without a QEMU the slot's id means nothing.
  m.qemu_pid.reset();
  CHECK(vm_id_of(m) == "k3f9ab");
}

TEST_CASE("free page reporting is on unless AGENT_VM_FREE_PAGE_REPORTING turns it off", "[session_vm]") {
  SessionPaths p("/s/k3f9ab");
  HostFacts h = sample_host();
  CHECK(session_vm_spec(sample_meta(), p, h, 2231).free_page_reporting);
  h.free_page_reporting = false;
  CHECK_FALSE(session_vm_spec(sample_meta(), p, h, 2231).free_page_reporting);
  CHECK(free_page_reporting_from_env(nullptr));
  CHECK(free_page_reporting_from_env(""));
  CHECK(free_page_reporting_from_env("on"));
  CHECK(free_page_reporting_from_env("1"));
  CHECK_FALSE(free_page_reporting_from_env("off"));
  CHECK_FALSE(free_page_reporting_from_env("0"));
  try {
    free_page_reporting_from_env("no");
    FAIL("'no' is refused");
  } catch (const avm::Error& e) {
    CHECK(std::string(e.what()) == "AGENT_VM_FREE_PAGE_REPORTING is 'no'");
    CHECK(e.hint() == "set it to on or off, or unset it");
  }
}

TEST_CASE("an aarch64 image's session boots on qemu-system-aarch64's virt, without TSC hints", "[session_vm]") {
  HostFacts h = sample_host();
  h.arch = L::GuestArch::Aarch64;
  h.qemu = "/usr/bin/qemu-system-aarch64";
  h.cmdline = "console=ttyAMA0";
  L::VmSpec s = session_vm_spec(sample_meta(), SessionPaths("/s/x"), h, 2222);
  CHECK(s.arch == L::GuestArch::Aarch64);
  auto a = L::qemu_argv(s);
  CHECK(a.front() == "/usr/bin/qemu-system-aarch64");
  CHECK(std::find(a.begin(), a.end(), "virt,gic-version=max") != a.end());
  CHECK(L::kernel_cmdline(s) == "console=ttyAMA0");
}
