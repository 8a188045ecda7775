// Everything the session lifecycle needs from outside the session folder:
// the image, QEMU, the accelerator, ports, and the VM itself (boot, observe,
// stop, exec). The real driver wraps launcher/; tests give a fake one, so
// spawn, resume, stop, list and exec run in milliseconds without a VM.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "launcher/accel.h"
#include "launcher/host.h"
#include "launcher/image.h"
#include "launcher/ports.h"
#include "launcher/vm.h"
#include "sessions/session_vm.h"

namespace avm {
class Progress;
}

namespace avm::sessions {

class VmDriver {
 public:
  virtual ~VmDriver() = default;

  // What a start needs to know of the host.
  virtual launcher::Image load_image(const std::string& name) = 0;
  // The QEMU that runs guests of `arch` (qemu-system-x86_64, -aarch64).
  virtual launcher::QemuInfo qemu(launcher::GuestArch arch) = 0;
  // The accelerator for `request`; may probe by booting `image`'s kernel.
  virtual launcher::AccelChoice choose_accel(launcher::AccelRequest request, const launcher::Image& image,
                                             const launcher::QemuInfo& qemu, Progress& progress) = 0;
  // The host TSC in kHz, for TCG guests (nullopt: unknown).
  virtual std::optional<unsigned long> tsc_khz() = 0;
  // `exact` or fail naming its user; else a free port, `preferred` first.
  virtual launcher::PortReservation reserve_port(std::optional<std::uint16_t> exact,
                                                 std::uint16_t preferred) = 0;
  // Readies the session folder for the guest (ownership as QEMU's user sees it).
  virtual void prepare_share(const std::filesystem::path& session_dir) = 0;

  // The VM.
  virtual launcher::BootResult boot(const launcher::VmSpec& spec, launcher::PortReservation& port,
                                    const launcher::BootOptions& opts) = 0;
  // The readiness wait alone, for a VM that runs already (a warm-pool VM at
  // its claim): launcher::await_vm.
  virtual launcher::BootResult await_ready(const launcher::VmHandle& vm, const launcher::BootOptions& opts) {
    return launcher::await_vm(vm, opts);
  }
  // Whether `vm` (its pid, name and start time) is a live QEMU.
  virtual bool alive(const launcher::VmHandle& vm) = 0;
  // Called concurrently, one thread per session.
  virtual launcher::VmObservation observe(const launcher::VmHandle& vm, const launcher::ObserveOptions& opts) = 0;
  virtual launcher::StopReport stop(const launcher::VmHandle& vm, const launcher::StopPolicy& policy,
                                    const launcher::ProgressFn& progress) = 0;
  // QMP stop / cont; returns QEMU's status afterwards.
  virtual std::string set_paused(const launcher::VmHandle& vm, bool paused) = 0;
  // Steps the guest's clock to the host's; returns guest minus host before.
  virtual std::chrono::nanoseconds step_guest_clock(const launcher::VmHandle& vm,
                                                    std::chrono::milliseconds timeout) = 0;
  virtual launcher::GuestExecResult exec(const launcher::VmHandle& vm, const std::vector<std::string>& argv,
                                         std::chrono::milliseconds timeout, std::string_view input) = 0;
  // QEMU processes named `vm_name`, whatever meta.json says.
  virtual std::vector<pid_t> find_vm_processes(const std::string& vm_name) = 0;
};

// What this host contributes to a VM of `image` (sessions/session_vm.h).
HostFacts host_facts(VmDriver& driver, const launcher::Image& image, const launcher::QemuInfo& qemu,
                     const launcher::AccelChoice& accel);

// launcher/ for real, with its caches in util/paths cache_dir().
VmDriver& default_driver();

// Whether the QEMU meta.json names (pid and start time) still runs.
bool vm_running(VmDriver& driver, const Meta& m, const SessionPaths& p);

}  // namespace avm::sessions
