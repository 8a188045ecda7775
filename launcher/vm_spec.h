// What one VM is, and the QEMU command line that makes it. A pure function:
// the same spec gives the same argv, unit-tested without QEMU.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace avm::launcher {

// The virtio-serial port the guest's agent holds open while it runs (the
// guest contract; guest/common's agent-run opens it).
inline constexpr const char* kAgentPortName = "org.agent-vm.agent.0";


enum class Accel { Kvm, Tcg };
const char* to_string(Accel a);

// The guest's CPU architecture: the image's manifest names it ("arch", a
// Debian architecture; images without one are amd64). Each has its QEMU
// binary and machine: x86_64 boots on `microvm`, aarch64 on `virt`.
enum class GuestArch { X86_64, Aarch64 };
const char* to_string(GuestArch a);     // "x86_64", "aarch64" (uname -m)
const char* debian_arch(GuestArch a);   // "amd64", "arm64"
// "amd64"/"x86_64" or "arm64"/"aarch64"; nullopt for anything else.
std::optional<GuestArch> parse_guest_arch(const std::string& s);
// The architecture this program runs on (nullopt: neither of the above).
std::optional<GuestArch> host_arch();
std::string qemu_binary(GuestArch a);    // "qemu-system-x86_64", "qemu-system-aarch64"
std::string qemu_package(GuestArch a);   // the Debian package holding it

// How the 9p share maps ownership. QEMU as an ordinary user: `None` (files keep
// the host user's uid on both sides). QEMU as root: `MappedXattr` (files the
// guest writes stay root's on the host; guest ownership lives in xattrs).
enum class ShareModel { None, MappedXattr };
ShareModel share_model_for_uid(unsigned uid);

// Network modes: full user networking, restricted (only what the session
// allows, through a guestfwd to the egress proxy), or no network at all.
enum class NetMode { Full, Restricted, Off };
const char* to_string(NetMode m);

// The sizes a guest can have. QEMU's command line needs 64 MiB; below that
// the VM never starts.
inline constexpr unsigned kMinCpus = 1;
inline constexpr unsigned kMaxCpus = 64;
inline constexpr unsigned kMinMemoryMib = 64;
// Throw avm::Error naming the fix (--cpus, --memory) when out of range.
// `memory_as_given` is the user's spelling ("32M") for the message.
void check_cpus(unsigned cpus);
void check_memory_mib(unsigned mib, const std::string& memory_as_given = {});

struct VmSpec {
  std::string name;  // "agent-vm-<id>": shows in ps and in the QMP query-name
  std::string qemu = "qemu-system-x86_64";
  GuestArch arch = GuestArch::X86_64;
  Accel accel = Accel::Tcg;
  unsigned cpus = 2;
  unsigned memory_mib = 2048;

  // The image.
  std::filesystem::path kernel, initrd, rootfs;
  std::string cmdline;                    // the image's base kernel command line
  std::optional<unsigned long> tsc_khz;   // host TSC kHz, passed to the guest under TCG

  // The session folder shared over 9p with mount tag `session`.
  std::filesystem::path share_dir;
  ShareModel share_model = ShareModel::None;

  // SSH is forwarded from 127.0.0.1:ssh_port only.
  std::uint16_t ssh_port = 0;
  NetMode net = NetMode::Full;
  // Restricted mode: the guest reaches 10.0.2.100:3128, which QEMU connects
  // to this host command's stdio (the egress proxy).
  std::vector<std::string> egress_cmd;
  // Restricted and full modes: the guest reaches 10.0.2.100:80, which QEMU
  // connects to this host command's stdio (the model gateway). Empty: none.
  std::vector<std::string> gateway_cmd;

  std::filesystem::path qmp_socket, qga_socket, console_log, pid_file;
  // A second QMP monitor for observers (agent-list), so they never queue
  // behind a command holding the first. Optional.
  std::filesystem::path observe_socket;
  // The agent's port: a virtio-serial port named org.agent-vm.agent.0 that the
  // guest's agent holds open while it runs (and writes one line to when it
  // opens it), backed by this host file. QEMU reports whether the guest holds
  // it open (query-chardev's frontend-open), so the agent's state is read from
  // QEMU without a guest round trip; a non-empty file says it was opened at
  // least once this boot. Optional.
  std::filesystem::path agent_port_log;

  // A virtio balloon with free page reporting: the guest tells QEMU which
  // of its pages are free (in 2 MiB blocks, once they have stayed free a
  // moment) and QEMU gives them back to the host, so an idle guest's memory
  // shrinks to what it uses. The balloon is never inflated.
  bool free_page_reporting = true;

  bool sandbox = true;     // -sandbox on, no spawning, no privilege changes
  // The gateway and the egress proxy are started by QEMU per connection, so
  // spawning stays allowed whenever there is a network.
  bool sandbox_allow_spawn = false;
  std::vector<std::string> extra_args;
};

// The QEMU argv (argv[0] = spec.qemu). Throws avm::Error if the spec is
// incomplete (names the missing field).
std::vector<std::string> qemu_argv(const VmSpec& spec);

// The kernel command line the guest gets: the image's plus what the
// accelerator needs (an x86_64 guest under TCG: tsc=reliable tsc_early_khz=<kHz>).
std::string kernel_cmdline(const VmSpec& spec);

// The host's TSC frequency in kHz: from the kernel's own measurement
// ("tsc: Detected ... MHz" / "Refined TSC clocksource calibration") when it
// is readable, else measured (platform::constant_tsc first). nullopt when unknown
// (not x86, no constant TSC).
std::optional<unsigned long> host_tsc_khz();

}  // namespace avm::launcher
