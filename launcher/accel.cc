#include "launcher/accel.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "util/error.h"
#include "util/fd.h"
#include "util/file.h"
#include "util/process.h"
#include "util/strings.h"

namespace avm::launcher {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono;

AccelRequest parse_accel_request(const std::string& s) {
  std::string v = lower_ascii(s);
  if (v == "auto") return AccelRequest::Auto;
  if (v == "kvm") return AccelRequest::Kvm;
  if (v == "tcg") return AccelRequest::Tcg;
  throw Error("unknown accelerator '" + s + "'", "use auto, kvm or tcg");
}

AccelRequest accel_request_from(const std::optional<std::string>& flag) {
  if (flag) return parse_accel_request(*flag);
  if (const char* env = std::getenv("AGENT_VM_ACCEL"); env && *env) {
    try {
      return parse_accel_request(env);
    } catch (const Error& e) {
      throw Error(std::string("AGENT_VM_ACCEL: ") + e.what(), e.hint());
    }
  }
  return AccelRequest::Auto;
}

KvmDevice inspect_kvm(const fs::path& dev) {
  using S = KvmDevice::State;
  Fd fd(::open(dev.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) {
    int err = errno;
    if (err == ENOENT)
      return {S::Missing, dev.string() + " does not exist (no hardware virtualisation exposed to this host)"};
    if (err == EACCES || err == EPERM)
      return {S::NoAccess, dev.string() + " is not accessible to this user (not in the kvm group?)"};
    return {S::Broken, "cannot open " + dev.string() + ": " + std::strerror(err)};
  }
  int version = ::ioctl(fd.get(), KVM_GET_API_VERSION, 0);
  if (version != KVM_API_VERSION)
    return {S::Broken, dev.string() + " reports API version " + std::to_string(version) + ", expected " +
                           std::to_string(KVM_API_VERSION)};
  Fd vm(::ioctl(fd.get(), KVM_CREATE_VM, 0));
  if (!vm) return {S::Broken, std::string("KVM_CREATE_VM failed: ") + std::strerror(errno)};
  return {S::Usable, dev.string() + " opens and creates VMs"};
}

ProbeResult probe_kvm_boot(const std::string& qemu, const fs::path& kernel, const fs::path& initrd,
                           milliseconds timeout, GuestArch arch) {
  bool arm = arch == GuestArch::Aarch64;
  std::vector<std::string> argv = {
      qemu, "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
      "-machine", arm ? "virt,gic-version=host" : "microvm,acpi=on", "-accel", "kvm", "-cpu", "host",
      "-m", "256", "-kernel", kernel.string(), "-initrd", initrd.string(),
      "-append", std::string("console=") + (arm ? "ttyAMA0" : "ttyS0") + " agentvm.probe=1 panic=-1",
      "-serial", "stdio"};
  RunOptions o;
  o.timeout = timeout;
  o.merge_stderr = true;
  auto start = steady_clock::now();
  RunResult r = run(argv, o);
  auto took = duration_cast<milliseconds>(steady_clock::now() - start);
  bool ok = r.out.find("agent-vm: probe ok") != std::string::npos;
  std::string detail;
  if (!ok) {
    detail = r.exit_code == 128 + 9 ? "no sign of life within " + human_duration_ms(timeout)
                                    : "QEMU exited with status " + std::to_string(r.exit_code);
    std::string tail = trim(tail_lines(r.out, 3));
    if (!tail.empty()) detail += "; last output: " + tail;
  }
  return {ok, took, detail};
}

std::string host_key(const std::string& qemu_version) {
  utsname u{};
  ::uname(&u);
  struct stat st {};
  std::string dev = ::stat("/dev/kvm", &st) == 0 ? std::to_string(st.st_rdev) : "none";
  return std::string(u.release) + "|" + u.machine + "|" + qemu_version + "|kvm:" + dev;
}

std::optional<CachedVerdict> load_verdict(const fs::path& cache_file, const std::string& key) {
  try {
    auto text = read_file_if_exists(cache_file);
    if (!text) return std::nullopt;
    json::value v = json::parse(*text);
    const json::object& o = v.as_object();
    if (o.at("key").as_string() != key) return std::nullopt;
    return CachedVerdict{o.at("kvm_works").as_bool(), json::value_to<std::string>(o.at("reason"))};
  } catch (const std::exception&) {
    return std::nullopt;  // unreadable cache: probe again
  }
}

void save_verdict(const fs::path& cache_file, const std::string& key, const CachedVerdict& v) {
  make_private_dir(cache_file.parent_path());
  json::object o;
  o["key"] = key;
  o["kvm_works"] = v.kvm_works;
  o["reason"] = v.reason;
  write_file_atomic(cache_file, json::serialize(o) + "\n", 0644);
}

AccelChoice choose_accel(const AccelInputs& in) {
  using S = KvmDevice::State;
  if (in.request == AccelRequest::Tcg)
    return {Accel::Tcg, "TCG (software emulation) as requested", false, false};

  if (!in.host || *in.host != in.guest) {
    std::string why = std::string("the image is ") + to_string(in.guest) + " and this host is " +
                      (in.host ? to_string(*in.host) : "of another architecture") +
                      "; KVM runs guests of the host's own architecture only";
    if (in.request == AccelRequest::Kvm)
      throw Error("KVM was requested but " + why,
                  "use --accel tcg (or auto), or an image built for this host's architecture");
    return {Accel::Tcg, "TCG (emulating another architecture, far slower than KVM): " + why, false, false};
  }

  if (in.kvm.state != S::Usable) {
    if (in.request == AccelRequest::Kvm) {
      std::string hint = in.kvm.state == S::NoAccess
                             ? "add yourself to the kvm group (sudo usermod -aG kvm $USER, then log in again), or use --accel tcg"
                             : "use --accel tcg (or auto), or enable virtualisation for this host";
      throw Error("KVM was requested but " + in.kvm.detail, hint);
    }
    return {Accel::Tcg, "TCG (software emulation, ~10x slower): " + in.kvm.detail, false, false};
  }

  if (in.request == AccelRequest::Kvm)
    return {Accel::Kvm, "KVM as requested (" + in.kvm.detail + ")", false, false};

  // Auto with a usable /dev/kvm: does a guest actually boot on it?
  if (in.cached) {
    if (auto v = in.cached()) {
      if (v->kvm_works) return {Accel::Kvm, "KVM: " + v->reason + " (cached)", false, true};
      return {Accel::Tcg, "TCG (software emulation, ~10x slower): " + v->reason + " (cached)", false, true};
    }
  }
  if (!in.probe)
    return {Accel::Kvm, "KVM: " + in.kvm.detail + " (not probed: no image to boot)", false, false};
  ProbeResult p = in.probe();
  CachedVerdict v{p.ok, p.ok ? "a probe guest booted in " + human_duration_ms(p.took)
                             : "guests stall on this /dev/kvm (probe boot: " + p.detail +
                                   "); nested virtualisation?"};
  if (in.remember) in.remember(v);
  if (v.kvm_works) return {Accel::Kvm, "KVM: " + v.reason, true, false};
  return {Accel::Tcg, "TCG (software emulation, ~10x slower): " + v.reason, true, false};
}

AccelChoice choose_host_accel(const HostAccelQuery& q) {
  AccelInputs in;
  in.request = q.request;
  in.guest = q.guest;
  in.host = host_arch();
  in.kvm = q.kvm;
  std::string key = host_key(q.qemu_version);
  in.cached = [&] { return load_verdict(q.verdict_file, key); };
  in.remember = [&](const CachedVerdict& v) { save_verdict(q.verdict_file, key, v); };
  if (!q.kernel.empty())
    in.probe = [&] {
      if (q.probing) q.probing();
      ProbeResult r = probe_kvm_boot(q.qemu_path, q.kernel, q.initrd, q.probe_timeout, q.guest);
      if (q.probed) q.probed(r);
      return r;
    };
  return choose_accel(in);
}

}  // namespace avm::launcher
