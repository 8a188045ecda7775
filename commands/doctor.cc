// agent-vm doctor: what this host can run, and why.
#include <grp.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <iostream>

#include "commands/command.h"
#include "commands/render.h"
#include "launcher/accel.h"
#include "launcher/host.h"
#include "launcher/image.h"
#include "launcher/ports.h"
#include "launcher/vm_spec.h"
#include "util/error.h"
#include "util/file.h"
#include "util/paths.h"
#include "util/progress.h"

namespace avm::cmd {

namespace json = boost::json;
namespace L = avm::launcher;

namespace {

struct Check {
  std::string area, verdict;
  bool ok;
  std::string fix;
};

class Doctor final : public Command {
 public:
  std::string name() const override { return "doctor"; }
  std::string summary() const override { return "Check what this host can run, and why"; }

  void configure(CLI::App& app) override {
    app.description(
        "Checks QEMU, the accelerator (and why it was chosen), the guest image, free\n"
        "SSH ports and the sessions folder, and says what to fix. On a host with a\n"
        "/dev/kvm it boots a tiny probe guest once (cached) to see whether KVM guests\n"
        "really run: under nested virtualisation they can stall in early boot.");
    app.add_flag("--json", json_, "Print the findings as JSON");
    app.add_option("--image", image_, "Image to check (default: default)");
    app.footer("EXIT STATUS\n  0 when sessions can be spawned here, 1 when something must be fixed first.");
  }

  int run() override {
    std::vector<Check> checks;
    Progress progress(json_);

    std::optional<L::QemuInfo> qemu;
    try {
      qemu = L::inspect_qemu();
      checks.push_back({"qemu", qemu->path.string() + " " + qemu->version +
                                    (qemu->package.empty() ? "" : " (" + qemu->package + ")") +
                                    (qemu->sandbox ? ", seccomp sandbox available" : ", no seccomp sandbox"),
                        true, ""});
    } catch (const Error& e) {
      checks.push_back({"qemu", e.what(), false, e.hint()});
    }

    std::optional<L::Image> image;
    try {
      image = L::load_image(image_);
      checks.push_back({"image", image->name + " at " + image->dir.string() + " (opencode " +
                                     image->opencode_version + ", built " + image->built + ")",
                        true, ""});
    } catch (const Error& e) {
      checks.push_back({"image", e.what(), false, e.hint()});
    }

    L::KvmDevice kvm = L::inspect_kvm();
    std::string kvm_fix;
    if (kvm.state == L::KvmDevice::State::NoAccess) {
      kvm_fix = "add yourself to the kvm group: sudo usermod -aG kvm $USER (then log in again)";
    }
    checks.push_back({"/dev/kvm", kvm.detail, kvm.state != L::KvmDevice::State::NoAccess, kvm_fix});

    if (qemu) {
      L::HostAccelQuery q;
      q.kvm = kvm;
      q.qemu_path = qemu->path.string();
      q.qemu_version = qemu->version;
      q.verdict_file = cache_dir() / "accel.json";
      if (image) {
        q.kernel = image->kernel;
        q.initrd = image->initrd;
      }
      q.probing = [&] { progress.stage("probing KVM with a test boot"); };
      q.probed = [&](const L::ProbeResult& r) { progress.done(r.ok ? "guests boot" : "guests stall"); };
      try {
        L::AccelChoice c = L::choose_host_accel(q);
        checks.push_back({"accelerator", c.reason, true,
                          c.accel == L::Accel::Tcg ? "TCG works everywhere but is ~10x slower; the real agent "
                                                     "takes ~100 s to draw its first screen"
                                                   : ""});
      } catch (const Error& e) {
        checks.push_back({"accelerator", e.what(), false, e.hint()});
      }
      if (auto khz = L::host_tsc_khz())
        checks.push_back({"tsc", "host TSC " + std::to_string(*khz) + " kHz (passed to TCG guests)", true, ""});
      else
        checks.push_back({"tsc", "host TSC frequency unknown: TCG guests may calibrate slowly", true, ""});
    }

    try {
      auto port = L::reserve_port(std::nullopt);
      checks.push_back({"ports", "first free SSH port: " + std::to_string(port.port) + " (range " +
                                     std::to_string(L::kFirstPort) + "-" + std::to_string(L::kLastPort) + ")",
                        true, ""});
    } catch (const Error& e) {
      checks.push_back({"ports", e.what(), false, e.hint()});
    }

    std::filesystem::path sdir = sessions_dir();
    try {
      make_private_dir(sdir);
      bool writable = ::access(sdir.c_str(), W_OK) == 0;
      checks.push_back({"sessions", sdir.string() + (writable ? " (writable)" : " is not writable"), writable,
                        writable ? "" : "fix its permissions or set AGENT_VM_SESSIONS"});
    } catch (const Error& e) {
      checks.push_back({"sessions", e.what(), false, "set AGENT_VM_SESSIONS to a writable folder"});
    }

    bool ok = true;
    for (const auto& c : checks) ok = ok && c.ok;
    if (json_) {
      json::array a;
      for (const auto& c : checks)
        a.push_back(json::object{{"area", c.area}, {"ok", c.ok}, {"verdict", c.verdict}, {"fix", c.fix}});
      print_json(std::cout, json::object{{"ok", ok}, {"version", AGENT_VM_VERSION}, {"checks", a}});
      return ok ? 0 : 1;
    }
    std::cout << "agent-vm " << AGENT_VM_VERSION << "\n";
    for (const auto& c : checks) {
      std::cout << (c.ok ? "  ok    " : "  FIX   ") << c.area << ": " << c.verdict << "\n";
      if (!c.fix.empty()) std::cout << "        -> " << c.fix << "\n";
    }
    std::cout << (ok ? "This host can run agent-vm sessions.\n" : "Fix the items marked FIX first.\n");
    return ok ? 0 : 1;
  }

 private:
  bool json_ = false;
  std::string image_ = "default";
};

}  // namespace

std::unique_ptr<Command> make_doctor() { return std::make_unique<Doctor>(); }

}  // namespace avm::cmd
