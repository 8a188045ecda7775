// Choosing the accelerator. `auto` must cope with three kinds of host without
// the user's help: no /dev/kvm (TCG), a working KVM (KVM), and a /dev/kvm on
// which guests stall in early boot (nested virtualisation: TCG). An image of
// another architecture than the host's (aarch64 on x86_64) runs under TCG
// only, whatever /dev/kvm can do. The last is
// only found by booting: a probe boots the image's kernel under KVM and waits
// for the initramfs to report; the verdict is cached, so only the first spawn
// on a host pays for it.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "launcher/vm_spec.h"

namespace avm::launcher {

enum class AccelRequest { Auto, Kvm, Tcg };
// "auto", "kvm", "tcg" (case-insensitive); avm::Error naming the choices otherwise.
AccelRequest parse_accel_request(const std::string& s);
// --accel if given, else $AGENT_VM_ACCEL, else auto.
AccelRequest accel_request_from(const std::optional<std::string>& flag);

// What /dev/kvm looks like to this process, without booting anything.
struct KvmDevice {
  enum class State { Missing, NoAccess, Broken, Usable } state;
  std::string detail;  // the reason, in words
};
KvmDevice inspect_kvm(const std::filesystem::path& dev = "/dev/kvm");

struct AccelChoice {
  Accel accel;
  std::string reason;      // one line: why this accelerator
  bool probed = false;     // a KVM probe boot ran now
  bool cached = false;     // the verdict came from the cache
};

// Boots kernel+initrd under KVM with `agentvm.probe=1` and reports whether the
// guest got as far as printing "agent-vm: probe ok" before `timeout`.
struct ProbeResult {
  bool ok;
  std::chrono::milliseconds took;
  std::string detail;  // console tail or QEMU's error when !ok
};
using KvmProbe = std::function<ProbeResult()>;
ProbeResult probe_kvm_boot(const std::string& qemu, const std::filesystem::path& kernel,
                           const std::filesystem::path& initrd, std::chrono::milliseconds timeout,
                           GuestArch arch = GuestArch::X86_64);

// The cached verdict for this host (keyed by host kernel, QEMU version and
// the /dev/kvm device), in `cache_file`.
struct CachedVerdict {
  bool kvm_works;
  std::string reason;
};
std::string host_key(const std::string& qemu_version);
std::optional<CachedVerdict> load_verdict(const std::filesystem::path& cache_file,
                                          const std::string& key);
void save_verdict(const std::filesystem::path& cache_file, const std::string& key,
                  const CachedVerdict& v);

// The decision itself: pure apart from the inspect/probe/cache callbacks it is
// given, so every path is unit-tested.
struct AccelInputs {
  AccelRequest request = AccelRequest::Auto;
  GuestArch guest = GuestArch::X86_64;               // the image's architecture
  std::optional<GuestArch> host = GuestArch::X86_64;  // this host's (host_arch())
  KvmDevice kvm;
  std::function<std::optional<CachedVerdict>()> cached;  // may be empty
  KvmProbe probe;                                         // may be empty: no probe possible
  std::function<void(const CachedVerdict&)> remember;     // may be empty
};
AccelChoice choose_accel(const AccelInputs& in);

// The accelerator for this host, as spawn, resume and doctor choose it:
// /dev/kvm as inspected, the verdict cached in `verdict_file` (keyed by
// host_key(qemu_version)), and a probe boot of the image's kernel and initrd
// when nothing else settles it (no kernel given: no probe).
struct HostAccelQuery {
  AccelRequest request = AccelRequest::Auto;
  GuestArch guest = GuestArch::X86_64;  // the image's architecture
  KvmDevice kvm;
  std::string qemu_path, qemu_version;
  std::filesystem::path kernel, initrd;
  std::filesystem::path verdict_file;
  std::chrono::milliseconds probe_timeout{15000};
  std::function<void()> probing;                  // before a probe boot (may be empty)
  std::function<void(const ProbeResult&)> probed;  // after it (may be empty)
};
AccelChoice choose_host_accel(const HostAccelQuery& q);

}  // namespace avm::launcher
