#include "sessions/vm_driver.h"

#include <unistd.h>

#include <cstdlib>

#include "launcher/qemu_process.h"
#include "launcher/share.h"
#include "util/paths.h"
#include "util/progress.h"

namespace avm::sessions {

namespace L = avm::launcher;
namespace fs = std::filesystem;

namespace {

class RealDriver final : public VmDriver {
 public:
  L::Image load_image(const std::string& name) override { return L::load_image(name); }
  L::QemuInfo qemu(L::GuestArch arch) override {
    // One cache file per binary: a host running both kinds of guest would
    // otherwise ask each QEMU again at every other start.
    if (arch == L::GuestArch::X86_64) return L::inspect_qemu_cached(cache_dir() / "qemu.json");
    return L::inspect_qemu_cached(cache_dir() / ("qemu-" + std::string(L::to_string(arch)) + ".json"),
                                  L::qemu_binary(arch));
  }
  L::AccelChoice choose_accel(L::AccelRequest request, const L::Image& image, const L::QemuInfo& qemu,
                              Progress& progress) override {
    L::HostAccelQuery q;
    q.request = request;
    q.guest = image.arch;
    q.kvm = L::inspect_kvm();
    q.qemu_path = qemu.path.string();
    q.qemu_version = qemu.version;
    q.kernel = image.kernel;
    q.initrd = image.initrd;
    q.verdict_file = cache_dir() / "accel.json";
    q.probing = [&] { progress.stage("probing KVM (once per host)"); };
    q.probed = [&](const L::ProbeResult& r) { progress.done(r.ok ? "guests boot" : "guests stall"); };
    return L::choose_host_accel(q);
  }
  std::optional<unsigned long> tsc_khz() override { return L::host_tsc_khz_cached(cache_dir() / "tsc.json"); }
  L::PortReservation reserve_port(std::optional<std::uint16_t> exact, std::uint16_t preferred) override {
    return exact ? L::reserve_port(*exact) : L::reserve_port_preferring(preferred);
  }
  void prepare_share(const fs::path& session_dir) override { L::prepare_share_for_guest(session_dir); }
  L::BootResult boot(const L::VmSpec& spec, L::PortReservation& port, const L::BootOptions& opts) override {
    return L::boot_vm(spec, port, opts);
  }
  bool alive(const L::VmHandle& vm) override {
    return vm.pid > 0 && L::is_vm_process(vm.pid, vm.name,
                                          vm.start_time ? std::optional<unsigned long long>(vm.start_time)
                                                        : std::nullopt);
  }
  L::VmObservation observe(const L::VmHandle& vm, const L::ObserveOptions& opts) override {
    return L::observe_vm(vm, opts);
  }
  L::StopReport stop(const L::VmHandle& vm, const L::StopPolicy& policy, const L::ProgressFn& progress) override {
    return L::stop_vm(vm, policy, progress);
  }
  std::string set_paused(const L::VmHandle& vm, bool paused) override {
    return L::set_vm_paused(vm, paused, std::chrono::milliseconds(5000));
  }
  std::chrono::nanoseconds step_guest_clock(const L::VmHandle& vm, std::chrono::milliseconds timeout) override {
    return L::step_guest_clock(vm, timeout);
  }
  L::GuestExecResult exec(const L::VmHandle& vm, const std::vector<std::string>& argv,
                          std::chrono::milliseconds timeout, std::string_view input) override {
    return L::exec_in_vm(vm, argv, timeout, input);
  }
  std::vector<pid_t> find_vm_processes(const std::string& vm_name) override {
    return L::find_vm_processes(vm_name);
  }
};

}  // namespace

HostFacts host_facts(VmDriver& driver, const L::Image& image, const L::QemuInfo& qemu, const L::AccelChoice& accel) {
  HostFacts host;
  host.kernel = image.kernel;
  host.initrd = image.initrd;
  host.rootfs = image.rootfs;
  host.cmdline = image.cmdline;
  host.arch = image.arch;
  host.qemu = qemu.path.string();
  host.qemu_sandbox = qemu.sandbox;
  host.accel = accel.accel;
  if (accel.accel == L::Accel::Tcg && image.arch == L::GuestArch::X86_64) host.tsc_khz = driver.tsc_khz();
  host.uid = ::geteuid();
  host.self_exe = self_exe();
  host.free_page_reporting = free_page_reporting_from_env(std::getenv("AGENT_VM_FREE_PAGE_REPORTING"));
  return host;
}

VmDriver& default_driver() {
  static RealDriver driver;
  return driver;
}

bool vm_running(VmDriver& driver, const Meta& m, const SessionPaths& p) {
  return m.qemu_pid && driver.alive(vm_handle(m, p));
}

}  // namespace avm::sessions
