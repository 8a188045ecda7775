#include "launcher/vm_spec.h"
#include "launcher/vm.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <thread>
#include <vector>
#include <catch2/catch.hpp>

#include "util/error.h"

using namespace avm::launcher;

namespace {

VmSpec sample() {
  VmSpec s;
  s.name = "agent-vm-k3f9ab";
  s.accel = Accel::Tcg;
  s.cpus = 2;
  s.memory_mib = 2048;
  s.kernel = "/img/vmlinuz";
  s.initrd = "/img/initrd.img";
  s.rootfs = "/img/root.squashfs";
  s.cmdline = "console=ttyS0 quiet";
  s.tsc_khz = 2095990;
  s.share_dir = "/home/u/.agent-vm/sessions/k3f9ab";
  s.share_model = ShareModel::None;
  s.ssh_port = 2222;
  s.qmp_socket = "/s/run/qmp.sock";
  s.qga_socket = "/s/run/qga.sock";
  s.console_log = "/s/run/console.log";
  s.pid_file = "/s/run/qemu.pid";
  return s;
}

// The value following `opt` in argv ("" if absent).
std::string after(const std::vector<std::string>& a, const std::string& opt, int nth = 0) {
  for (size_t i = 0; i + 1 < a.size(); ++i)
    if (a[i] == opt && nth-- == 0) return a[i + 1];
  return {};
}

bool contains(const std::vector<std::string>& a, const std::string& v) {
  return std::find(a.begin(), a.end(), v) != a.end();
}

}  // namespace

TEST_CASE("TCG gets microvm with PIT/PIC/RTC, cpu max and the TSC hints", "[vm_spec]") {
  auto a = qemu_argv(sample());
  CHECK(a.front() == "qemu-system-x86_64");
  CHECK(after(a, "-machine") == "microvm,acpi=on,pit=on,pic=on,rtc=on");
  CHECK(after(a, "-accel") == "tcg");
  CHECK(after(a, "-cpu") == "max");
  CHECK(after(a, "-append") == "console=ttyS0 quiet tsc=reliable tsc_early_khz=2095990");
  CHECK(after(a, "-smp") == "2");
  CHECK(after(a, "-m") == "2048");
}

TEST_CASE("KVM gets cpu host and no TSC hints", "[vm_spec]") {
  auto s = sample();
  s.accel = Accel::Kvm;
  auto a = qemu_argv(s);
  CHECK(after(a, "-machine") == "microvm,acpi=on");
  CHECK(after(a, "-accel") == "kvm");
  CHECK(after(a, "-cpu") == "host");
  CHECK(after(a, "-append") == "console=ttyS0 quiet");
}

TEST_CASE("the session folder is the 9p share with tag 'session'", "[vm_spec]") {
  auto s = sample();
  auto a = qemu_argv(s);
  CHECK(after(a, "-fsdev") ==
        "local,id=session,path=/home/u/.agent-vm/sessions/k3f9ab,security_model=none");
  CHECK(contains(a, "virtio-9p-device,id=share,fsdev=session,mount_tag=session"));
  s.share_model = ShareModel::MappedXattr;
  CHECK(after(qemu_argv(s), "-fsdev").find("security_model=mapped-xattr") != std::string::npos);
  CHECK(share_model_for_uid(0) == ShareModel::MappedXattr);
  CHECK(share_model_for_uid(1000) == ShareModel::None);
}

TEST_CASE("SSH is forwarded from 127.0.0.1 only", "[vm_spec]") {
  auto a = qemu_argv(sample());
  CHECK(after(a, "-netdev") == "user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22");
}

TEST_CASE("restricted networking has one way out, the egress command", "[vm_spec]") {
  auto s = sample();
  s.net = NetMode::Restricted;
  s.egress_cmd = {"/usr/bin/agent-vm", "egress", "--allow=api.anthropic.com,x"};
  auto nd = after(qemu_argv(s), "-netdev");
  CHECK(nd.find("restrict=on") != std::string::npos);
  // A comma in the command is doubled so QEMU does not split on it.
  CHECK(nd.find("guestfwd=tcp:10.0.2.100:3128-cmd:/usr/bin/agent-vm egress --allow=api.anthropic.com,,x") !=
        std::string::npos);
  // QEMU starts the egress helper per connection: spawning stays allowed.
  s.sandbox_allow_spawn = true;
  CHECK(after(qemu_argv(s), "-sandbox") == "on,obsolete=deny,elevateprivileges=allow,resourcecontrol=deny");
  s.net = NetMode::Off;
  auto off = qemu_argv(s);
  CHECK_FALSE(contains(off, "-netdev"));
}

TEST_CASE("the model gateway is a second guestfwd in restricted and full networking", "[vm_spec]") {
  auto s = sample();
  s.gateway_cmd = {"/usr/bin/agent-vm", "gateway", "--dir", "/h/a,b"};
  for (NetMode m : {NetMode::Full, NetMode::Restricted}) {
    s.net = m;
    s.egress_cmd = {"/usr/bin/agent-vm", "egress"};
    auto nd = after(qemu_argv(s), "-netdev");
    CHECK(nd.find(",guestfwd=tcp:10.0.2.100:80-cmd:/usr/bin/agent-vm gateway --dir /h/a,,b") != std::string::npos);
  }
  s.gateway_cmd.clear();
  CHECK(after(qemu_argv(s), "-netdev").find(":80-cmd:") == std::string::npos);
}

TEST_CASE("monitor, guest agent and console use the run/ paths", "[vm_spec]") {
  auto a = qemu_argv(sample());
  CHECK(contains(a, "socket,id=qmp,path=/s/run/qmp.sock,server=on,wait=off"));
  CHECK(contains(a, "socket,id=qga,path=/s/run/qga.sock,server=on,wait=off"));
  CHECK(contains(a, "virtserialport,chardev=qga,name=org.qemu.guest_agent.0"));
  CHECK(contains(a, "file,id=console,path=/s/run/console.log"));
  CHECK(after(a, "-pidfile") == "/s/run/qemu.pid");
  CHECK_FALSE(contains(a, "-daemonize"));  // the launcher detaches QEMU itself
  CHECK(after(a, "-sandbox") == "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
  CHECK(after(a, "-drive") == "id=root,file=/img/root.squashfs,format=raw,if=none,read-only=on");
}

TEST_CASE("observers get a monitor of their own when asked", "[vm_spec]") {
  auto s = sample();
  CHECK_FALSE(contains(qemu_argv(s), "chardev=qmp-observe,mode=control"));
  s.observe_socket = "/s/run/qmp-observe.sock";
  auto a = qemu_argv(s);
  CHECK(contains(a, "socket,id=qmp-observe,path=/s/run/qmp-observe.sock,server=on,wait=off"));
  CHECK(contains(a, "chardev=qmp-observe,mode=control"));
}

TEST_CASE("the agent's port is a virtio-serial port backed by a host file, when asked", "[vm_spec]") {
  auto s = sample();
  CHECK_FALSE(contains(qemu_argv(s), "virtserialport,chardev=agent,name=org.agent-vm.agent.0"));
  s.agent_port_log = "/s/run/agent-port.log";
  auto a = qemu_argv(s);
  CHECK(contains(a, "file,id=agent,path=/s/run/agent-port.log"));
  CHECK(contains(a, "virtserialport,chardev=agent,name=org.agent-vm.agent.0"));
  CHECK(avm::launcher::agent_port_log_for("/s/run/qmp.sock") == "/s/run/agent-port.log");
}

TEST_CASE("GUEST and AGENT from QEMU's chardevs: who holds which port open", "[vm_spec]") {
  using avm::launcher::ChardevOpen;
  using avm::launcher::VmObservation;
  using G = VmObservation::Guest;
  using A = VmObservation::Agent;
  auto seen = [](std::vector<ChardevOpen> c, bool used) {
    VmObservation o;
    avm::launcher::observe_ports(o, c, used);
    return o;
  };
  // Booted: both ports open.
  auto o = seen({{"qmp", true}, {"qga", true}, {"agent", true}, {"console", true}}, true);
  CHECK(o.guest == G::Up);
  CHECK(o.agent == A::Running);
  CHECK(o.agent_detail.empty());
  // The agent ended: its port closed after it was opened.
  o = seen({{"qga", true}, {"agent", false}}, true);
  CHECK(o.agent == A::Exited);
  CHECK(o.agent_detail.find("org.agent-vm.agent.0") != std::string::npos);
  // Still booting: nothing opened yet; the agent is not called ended.
  o = seen({{"qga", false}, {"agent", false}}, false);
  CHECK(o.guest == G::Closed);
  CHECK(o.agent == A::Unknown);
  // A VM started without the agent's port (an older command line).
  o = seen({{"qga", true}}, false);
  CHECK(o.guest == G::Up);
  CHECK(o.agent == A::Unknown);
}

TEST_CASE("commas in paths are escaped for QEMU's option parser", "[vm_spec]") {
  auto s = sample();
  s.share_dir = "/tmp/a,b";
  CHECK(after(qemu_argv(s), "-fsdev").find("path=/tmp/a,,b,") != std::string::npos);
}

TEST_CASE("an incomplete spec names the missing field", "[vm_spec]") {
  auto s = sample();
  s.kernel.clear();
  CHECK_THROWS_WITH(qemu_argv(s), Catch::Contains("kernel"));
  s = sample();
  s.ssh_port = 0;
  CHECK_THROWS_WITH(qemu_argv(s), Catch::Contains("ssh_port"));
}

TEST_CASE("sizes outside what a guest can have are refused, naming the flag", "[vm_spec]") {
  CHECK_NOTHROW(check_cpus(kMinCpus));
  CHECK_NOTHROW(check_cpus(kMaxCpus));
  CHECK_THROWS_WITH(check_cpus(0), Catch::Contains("--cpus must be between 1 and 64"));
  CHECK_THROWS_WITH(check_cpus(65), Catch::Contains("--cpus must be between 1 and 64"));
  CHECK_NOTHROW(check_memory_mib(kMinMemoryMib));
  CHECK_THROWS_WITH(check_memory_mib(32, "32M"), Catch::Contains("--memory 32M is too small for a guest"));
  try {
    check_memory_mib(63);
    FAIL("63 MiB accepted");
  } catch (const avm::Error& e) {
    CHECK(std::string(e.what()) == "--memory 63M is too small for a guest");
    CHECK(e.hint().find("at least 64M") != std::string::npos);
  }
  // The spec itself refuses them too: no QEMU is started for them.
  auto s = sample();
  s.memory_mib = 32;
  CHECK_THROWS_WITH(qemu_argv(s), Catch::Contains("too small"));
  s = sample();
  s.cpus = 0;
  CHECK_THROWS_WITH(qemu_argv(s), Catch::Contains("--cpus"));
}

TEST_CASE("the host TSC frequency is measured when the CPU has a constant TSC", "[vm_spec]") {
  auto khz = host_tsc_khz();
  // Every x86-64 host these tests run on has constant_tsc; elsewhere nullopt.
  if (khz) {
    CHECK(*khz > 100'000);     // > 100 MHz
    CHECK(*khz < 10'000'000);  // < 10 GHz
  }
}

TEST_CASE("the TSC measurement is exact or absent on a busy host", "[vm_spec]") {
  // A wrong tsc_early_khz is worse than none: measured while three threads
  // keep both cores busy, it agrees with a quiet measurement to 0.5%.
  auto quiet = host_tsc_khz();
  if (!quiet) return;
  std::atomic<bool> stop{false};
  std::vector<std::thread> hogs;
  for (int i = 0; i < 3; ++i)
    hogs.emplace_back([&stop] {
      volatile unsigned long n = 0;
      while (!stop.load(std::memory_order_relaxed)) n = n + 1;
    });
  std::vector<unsigned long> busy;
  for (int i = 0; i < 5; ++i)
    if (auto k = host_tsc_khz()) busy.push_back(*k);
  stop = true;
  for (auto& t : hogs) t.join();
  for (unsigned long k : busy) {
    INFO("quiet " << *quiet << " kHz, busy " << k << " kHz");
    CHECK(std::labs(static_cast<long>(k) - static_cast<long>(*quiet)) < static_cast<long>(*quiet / 200));
  }
}

TEST_CASE("the guest gives its free memory back through a balloon with free page reporting", "[vm_spec]") {
  auto a = qemu_argv(sample());
  CHECK(contains(a, "virtio-balloon-device,id=balloon,free-page-reporting=on"));
  auto s = sample();
  s.free_page_reporting = false;
  auto b = qemu_argv(s);
  CHECK_FALSE(std::any_of(b.begin(), b.end(), [](const std::string& x) { return x.find("balloon") != std::string::npos; }));
  CHECK(b.size() + 2 == a.size());
}

TEST_CASE("an aarch64 guest gets virt, qemu-system-aarch64's cpu and no TSC hints", "[vm_spec]") {
  auto s = sample();
  s.arch = GuestArch::Aarch64;
  s.qemu = qemu_binary(GuestArch::Aarch64);
  s.cmdline = "console=ttyAMA0 quiet";
  auto a = qemu_argv(s);
  CHECK(a.front() == "qemu-system-aarch64");
  CHECK(after(a, "-machine") == "virt,gic-version=max");
  CHECK(after(a, "-accel") == "tcg");
  CHECK(after(a, "-cpu") == "max,pauth-impdef=on");
  CHECK(after(a, "-append") == "console=ttyAMA0 quiet");  // tsc_khz is set, and ignored
  // The contract's devices, on virt's virtio-mmio transports.
  CHECK(contains(a, "virtio-blk-device,id=rootdisk,drive=root"));
  CHECK(contains(a, "virtio-9p-device,id=share,fsdev=session,mount_tag=session"));
  CHECK(contains(a, "virtio-net-device,netdev=net0"));
  CHECK(after(a, "-netdev").find("hostfwd=tcp:127.0.0.1:2222-:22") != std::string::npos);
  CHECK(contains(a, "virtio-balloon-device,id=balloon,free-page-reporting=on"));
  CHECK(contains(a, "virtserialport,chardev=qga,name=org.qemu.guest_agent.0"));
  CHECK(after(a, "-serial") == "chardev:console");
  s.accel = Accel::Kvm;
  a = qemu_argv(s);
  CHECK(after(a, "-machine") == "virt,gic-version=host");
  CHECK(after(a, "-accel") == "kvm");
  CHECK(after(a, "-cpu") == "host");
}

TEST_CASE("architectures by name, and their QEMU", "[vm_spec]") {
  CHECK(parse_guest_arch("arm64") == GuestArch::Aarch64);
  CHECK(parse_guest_arch("aarch64") == GuestArch::Aarch64);
  CHECK(parse_guest_arch("amd64") == GuestArch::X86_64);
  CHECK(parse_guest_arch("x86_64") == GuestArch::X86_64);
  CHECK_FALSE(parse_guest_arch("riscv64"));
  CHECK(std::string(debian_arch(GuestArch::Aarch64)) == "arm64");
  CHECK(std::string(to_string(GuestArch::Aarch64)) == "aarch64");
  CHECK(qemu_binary(GuestArch::X86_64) == "qemu-system-x86_64");
  CHECK(qemu_package(GuestArch::Aarch64) == "qemu-system-arm");
#if defined(__x86_64__)
  CHECK(host_arch() == GuestArch::X86_64);
#endif
}
