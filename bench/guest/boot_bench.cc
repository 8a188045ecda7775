// Guest image timings under TCG, against the baseline of a bare kernel boot
// (agentvm.probe=1: kernel + initramfs, power off at once) run side by side:
//   - QEMU start to "agent running" (agent-status through QGA) and to sshd
//     accepting the session's key (goal: within 10 s),
//   - power button to QEMU exit (goal: within 5 s),
//   - prepare_share_for_guest on a 10,000-file repo (first and later boots).
// Usage: bench_guest_boot [RUNS]   (image: $AGENT_VM_TEST_IMAGE or "default")
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "guest_vm.h"
#include "launcher/share.h"
#include "util/file.h"
#include "util/strings.h"
#include "util/temp_dir.h"

using namespace guest_test;
using clock_type = std::chrono::steady_clock;

namespace {

double secs(clock_type::duration d) { return std::chrono::duration<double>(d).count(); }

double median(std::vector<double> v) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int runs = argc > 1 ? std::atoi(argv[1]) : 3;
  auto image = test_image();
  std::vector<double> probe, agent, sshd, off;
  for (int i = 0; i < runs; ++i) {
    {
      SessionDir s;
      VmOptions o;
          o.extra_cmdline = "agentvm.probe=1";
      auto t0 = clock_type::now();
      Vm vm(image, s, o);
      if (vm.wait_exit(120s)) probe.push_back(secs(clock_type::now() - t0));
    }
    SessionDir s;
    auto t0 = clock_type::now();
    Vm vm(image, s);
    double t_agent = -1, t_ssh = -1;
    auto deadline = t0 + 300s;
    std::optional<Qga> qga;
    while ((t_agent < 0 || t_ssh < 0) && clock_type::now() < deadline) {
      if (t_ssh < 0 && ssh(vm, s, s.client_key(), "true", 20s).exit_code == 0)
        t_ssh = secs(clock_type::now() - t0);
      if (t_agent < 0) {
        try {
          if (!qga) qga.emplace(s.run() / "qga.sock", clock_type::now() + 2s);
          auto r = qga->exec({"/usr/libexec/agent-vm/agent-status"}, 20s);
          if (r.exit_code == 0) t_agent = secs(clock_type::now() - t0);
        } catch (const std::exception&) {
          qga.reset();
        }
      }
      // Neither has an event of its own to wait for: ask again shortly.
      std::this_thread::sleep_for(200ms);
    }
    if (t_agent >= 0) agent.push_back(t_agent);
    if (t_ssh >= 0) sshd.push_back(t_ssh);
    auto t1 = clock_type::now();
    vm.qmp().execute("system_powerdown");
    if (vm.qmp().wait_event("SHUTDOWN", t1 + 120s) && vm.wait_exit(60s))
      off.push_back(secs(clock_type::now() - t1));
    std::fprintf(stderr, "run %d: probe %.1fs, agent running %.1fs, sshd %.1fs, power-off %.1fs\n",
                 i + 1, probe.empty() ? -1 : probe.back(), t_agent, t_ssh,
                 off.empty() ? -1 : off.back());
  }

  // Stamping a 10,000-file repo for mapped-xattr (QEMU as root).
  avm::TempDir t("share-bench");
  for (int d = 0; d < 100; ++d) {
    auto dir = t.path() / "repo" / (std::string("dir") += std::to_string(d));
    std::filesystem::create_directories(dir);
    for (int f = 0; f < 100; ++f) avm::write_file_atomic(dir / (std::string("f") += std::to_string(f)), "x");
  }
  auto s0 = clock_type::now();
  avm::launcher::prepare_share_for_guest(t.path());
  double first = secs(clock_type::now() - s0);
  s0 = clock_type::now();
  avm::launcher::prepare_share_for_guest(t.path());
  double again = secs(clock_type::now() - s0);

  double base = median(probe);
  std::printf("guest boot under TCG (%d runs, medians; baseline: bare kernel + initramfs boot)\n", runs);
  std::printf("  %-40s %7.1fs\n", "baseline: kernel+initramfs, power off", base);
  std::printf("  %-40s %7.1fs  x%.1f baseline  (goal 10s)\n", "QEMU start -> agent running", median(agent),
              median(agent) / base);
  std::printf("  %-40s %7.1fs  x%.1f baseline  (goal 10s)\n", "QEMU start -> sshd accepting", median(sshd),
              median(sshd) / base);
  std::printf("  %-40s %7.1fs  (goal 5s)\n", "power button -> QEMU exit", median(off));
  std::printf("  %-40s %7.3fs first boot, %.3fs later boots\n", "prepare_share_for_guest, 10k files",
              first, again);
  return 0;
}
