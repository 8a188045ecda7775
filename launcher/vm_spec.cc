#include "launcher/vm_spec.h"

#include <time.h>

#include <algorithm>
#include <cmath>
#include <vector>
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

#include "util/error.h"
#include "util/file.h"
#include "util/platform.h"

namespace avm::launcher {

const char* to_string(Accel a) { return a == Accel::Kvm ? "kvm" : "tcg"; }

const char* to_string(GuestArch a) { return a == GuestArch::Aarch64 ? "aarch64" : "x86_64"; }

const char* debian_arch(GuestArch a) { return a == GuestArch::Aarch64 ? "arm64" : "amd64"; }

std::optional<GuestArch> parse_guest_arch(const std::string& s) {
  if (s == "amd64" || s == "x86_64") return GuestArch::X86_64;
  if (s == "arm64" || s == "aarch64") return GuestArch::Aarch64;
  return std::nullopt;
}

std::optional<GuestArch> host_arch() {
#if defined(__x86_64__)
  return GuestArch::X86_64;
#elif defined(__aarch64__)
  return GuestArch::Aarch64;
#else
  return std::nullopt;
#endif
}

std::string qemu_binary(GuestArch a) {
  return a == GuestArch::Aarch64 ? "qemu-system-aarch64" : "qemu-system-x86_64";
}

std::string qemu_package(GuestArch a) { return a == GuestArch::Aarch64 ? "qemu-system-arm" : "qemu-system-x86"; }

const char* to_string(NetMode m) {
  switch (m) {
    case NetMode::Full: return "full";
    case NetMode::Restricted: return "restricted";
    case NetMode::Off: return "none";
  }
  return "?";
}

ShareModel share_model_for_uid(unsigned uid) {
  return uid == 0 ? ShareModel::MappedXattr : ShareModel::None;
}

void check_cpus(unsigned cpus) {
  if (cpus < kMinCpus || cpus > kMaxCpus)
    throw Error("--cpus must be between " + std::to_string(kMinCpus) + " and " + std::to_string(kMaxCpus),
                "give a number of virtual CPUs, e.g. --cpus 2 (default: 2)");
}

void check_memory_mib(unsigned mib, const std::string& memory_as_given) {
  if (mib < kMinMemoryMib)
    throw Error("--memory " + (memory_as_given.empty() ? std::to_string(mib) + "M" : memory_as_given) +
                    " is too small for a guest",
                "give at least " + std::to_string(kMinMemoryMib) +
                    "M (the real agent needs 2G), e.g. --memory 512M");
}

namespace {

void require(bool ok, const char* field) {
  if (!ok) throw Error(std::string("VM spec is incomplete: ") + field + " is not set");
}

// QEMU's option parser treats ',' as a separator: a literal comma is doubled.
std::string qemu_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    out += c;
    if (c == ',') out += ',';
  }
  return out;
}

std::string path_opt(const std::filesystem::path& p) { return qemu_escape(p.string()); }

std::string join_cmd(const std::vector<std::string>& parts) {
  std::string cmd;
  for (const auto& part : parts) {
    if (!cmd.empty()) cmd += ' ';
    cmd += part;
  }
  return cmd;
}

}  // namespace

std::string kernel_cmdline(const VmSpec& spec) {
  std::string cmd = spec.cmdline;
  if (spec.arch == GuestArch::X86_64 && spec.accel == Accel::Tcg && spec.tsc_khz) {
    // Without these the guest kernel sometimes hangs calibrating the TSC under
    // TCG, and otherwise falls back to a clock that runs ~10% slow.
    if (!cmd.empty()) cmd += ' ';
    cmd += "tsc=reliable tsc_early_khz=" + std::to_string(*spec.tsc_khz);
  }
  return cmd;
}

std::vector<std::string> qemu_argv(const VmSpec& s) {
  require(!s.name.empty(), "name");
  require(!s.kernel.empty(), "kernel");
  require(!s.initrd.empty(), "initrd");
  require(!s.rootfs.empty(), "rootfs");
  require(!s.share_dir.empty(), "share_dir");
  require(!s.qmp_socket.empty(), "qmp_socket");
  require(!s.qga_socket.empty(), "qga_socket");
  require(!s.console_log.empty(), "console_log");
  require(s.net == NetMode::Off || s.ssh_port != 0, "ssh_port");
  require(s.net != NetMode::Restricted || !s.egress_cmd.empty(), "egress_cmd");
  check_cpus(s.cpus);
  check_memory_mib(s.memory_mib);

  std::vector<std::string> a;
  auto add = [&](std::initializer_list<std::string> xs) { a.insert(a.end(), xs); };

  add({s.qemu, "-name", qemu_escape(s.name), "-nodefaults", "-no-user-config",
       "-display", "none", "-no-reboot"});
  if (s.arch == GuestArch::Aarch64) {
    // `virt` booted without firmware: the kernel reads its device tree, the
    // virtio devices below sit on its virtio-mmio transports, the console is
    // its PL011 (ttyAMA0) and system_powerdown presses the device tree's
    // gpio-keys power button. GICv3 (gic-version=max/host) takes more than
    // 8 vCPUs. Under TCG, pauth-impdef=on replaces the architected pointer
    // authentication hash, which costs every function call, by a cheap one.
    if (s.accel == Accel::Tcg)
      add({"-machine", "virt,gic-version=max", "-accel", "tcg", "-cpu", "max,pauth-impdef=on"});
    else
      add({"-machine", "virt,gic-version=host", "-accel", "kvm", "-cpu", "host"});
  } else if (s.accel == Accel::Tcg) {
    // Without the PIT, PIC and RTC the kernel hangs calibrating its clocks under
    // TCG. `max` gives the guest AVX2, which the agent's binary needs.
    add({"-machine", "microvm,acpi=on,pit=on,pic=on,rtc=on", "-accel", "tcg", "-cpu", "max"});
  } else {
    add({"-machine", "microvm,acpi=on", "-accel", "kvm", "-cpu", "host"});
  }
  add({"-smp", std::to_string(s.cpus), "-m", std::to_string(s.memory_mib)});
  // QEMU may not fork, exec or change privileges: a guest that escapes into
  // QEMU gets no further. (QEMU's own -daemonize needs setsid, so the launcher
  // detaches QEMU itself.) Restricted networking must let QEMU start the
  // egress helper, and libslirp's child calls setsid() before exec, which
  // elevateprivileges=deny kills with SIGSYS; the launcher sets
  // no_new_privs instead, so no exec gains privileges either way.
  if (s.sandbox)
    add({"-sandbox", s.sandbox_allow_spawn ? "on,obsolete=deny,elevateprivileges=allow,resourcecontrol=deny"
                                           : "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"});

  add({"-kernel", s.kernel.string(), "-initrd", s.initrd.string(), "-append", kernel_cmdline(s)});
  add({"-drive", "id=root,file=" + path_opt(s.rootfs) + ",format=raw,if=none,read-only=on",
       "-device", "virtio-blk-device,id=rootdisk,drive=root"});

  std::string fsdev = "local,id=session,path=" + path_opt(s.share_dir) + ",security_model=";
  fsdev += s.share_model == ShareModel::None ? "none" : "mapped-xattr,fmode=0644,dmode=0755";
  add({"-fsdev", fsdev, "-device", "virtio-9p-device,id=share,fsdev=session,mount_tag=session"});

  if (s.net != NetMode::Off) {
    std::string netdev = "user,id=net0,hostfwd=tcp:127.0.0.1:" + std::to_string(s.ssh_port) + "-:22";
    if (s.net == NetMode::Restricted) {
      // restrict=on cuts the guest off from the host and the outside; the one
      // way out is the egress proxy, reached at 10.0.2.100:3128.
      netdev += ",restrict=on,guestfwd=tcp:10.0.2.100:3128-cmd:" + qemu_escape(join_cmd(s.egress_cmd));
    }
    // The model gateway: the guest's agent reaches the model at 10.0.2.100:80.
    if (!s.gateway_cmd.empty())
      netdev += ",guestfwd=tcp:10.0.2.100:80-cmd:" + qemu_escape(join_cmd(s.gateway_cmd));
    add({"-netdev", netdev, "-device", "virtio-net-device,netdev=net0"});
  }
  add({"-device", "virtio-rng-device"});
  if (s.free_page_reporting) add({"-device", "virtio-balloon-device,id=balloon,free-page-reporting=on"});

  add({"-device", "virtio-serial-device",
       "-chardev", "socket,id=qga,path=" + path_opt(s.qga_socket) + ",server=on,wait=off",
       "-device", "virtserialport,chardev=qga,name=org.qemu.guest_agent.0"});
  if (!s.agent_port_log.empty())
    add({"-chardev", "file,id=agent,path=" + path_opt(s.agent_port_log),
         "-device", "virtserialport,chardev=agent,name=" + std::string(kAgentPortName)});
  add({"-chardev", "socket,id=qmp,path=" + path_opt(s.qmp_socket) + ",server=on,wait=off",
       "-mon", "chardev=qmp,mode=control"});
  if (!s.observe_socket.empty())
    add({"-chardev", "socket,id=qmp-observe,path=" + path_opt(s.observe_socket) + ",server=on,wait=off",
         "-mon", "chardev=qmp-observe,mode=control"});
  add({"-chardev", "file,id=console,path=" + path_opt(s.console_log),
       "-serial", "chardev:console"});
  if (!s.pid_file.empty()) add({"-pidfile", s.pid_file.string()});
  a.insert(a.end(), s.extra_args.begin(), s.extra_args.end());
  return a;
}

std::optional<unsigned long> host_tsc_khz() {
#if defined(__x86_64__) || defined(__i386__)
  // Under TCG the guest's TSC is the host's, so measure what this process
  // sees: TSC ticks against CLOCK_MONOTONIC_RAW over 20 ms windows. A window
  // counts only when each end's TSC read sits between two clock reads taken
  // within 2 us of each other: a preemption there would skew it by
  // milliseconds (25% of the window), and a wrong hint is worse than none.
  // The median of three good windows, out of at most twelve tries.
  if (!platform::constant_tsc()) return std::nullopt;
  auto now_ns = [] {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
    return static_cast<long double>(ts.tv_sec) * 1e9L + ts.tv_nsec;
  };
  std::vector<long double> good;
  for (int i = 0; i < 12 && good.size() < 3; ++i) {
    long double t0 = now_ns();
    unsigned long long c0 = __rdtsc();
    long double t0b = now_ns();
    timespec req{0, 20'000'000};
    nanosleep(&req, nullptr);
    long double t1 = now_ns();
    unsigned long long c1 = __rdtsc();
    long double t1b = now_ns();
    if (t0b - t0 > 2000 || t1b - t1 > 2000) continue;
    good.push_back(static_cast<long double>(c1 - c0) / (((t1 + t1b) - (t0 + t0b)) / 2.0L) * 1e6L);
  }
  if (good.size() < 3) return std::nullopt;
  std::sort(good.begin(), good.end());
  long double khz = good[1];
  if (khz <= 0) return std::nullopt;
  return static_cast<unsigned long>(std::llround(khz));
#else
  return std::nullopt;
#endif
}

}  // namespace avm::launcher
