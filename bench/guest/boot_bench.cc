// Guest image timings under TCG, against the baseline of a bare kernel boot
// (agentvm.probe=1: kernel + initramfs, power off at once) run side by side:
//   - QEMU start to ready as agent-spawn waits for it (the launcher's
//     readiness wait): to sshd's banner (a login with the session's key is
//     then checked, not timed) and to the agent's tmux session (goal: within 10 s),
//   - power button to QEMU exit (goal: within 5 s),
//   - prepare_share_for_guest on a 10,000-file repo (first and later boots).
// Usage: bench_guest_boot [RUNS]   (image: $AGENT_VM_TEST_IMAGE or "default")
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "guest_vm.h"
#include "launcher/share.h"
#include "util/file.h"
#include "util/strings.h"
#include "util/temp_dir.h"

using namespace guest_test;
using clock_type = std::chrono::steady_clock;

namespace {

// As bench/run's other VM rows (agent-spawn --memory 512M): a guest's memory
// is set up by its kernel at boot, so a bigger one boots slower.
constexpr int kMemoryMib = 512;

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
      o.memory_mib = kMemoryMib;
      o.extra_cmdline = "agentvm.probe=1";
      auto t0 = clock_type::now();
      Vm vm(image, s, o);
      if (vm.wait_exit(120s)) probe.push_back(secs(clock_type::now() - t0));
    }
    SessionDir s;
    auto t0 = clock_type::now();
    VmOptions full;
    full.memory_mib = kMemoryMib;
    Vm vm(image, s, full);
    // Ready as agent-spawn sees it: the launcher's own readiness wait
    // (monitor, share, guest agent, sshd's banner, the agent's tmux session
    // through guest-agent file reads), so no probe of the bench's own costs
    // the guest a login or a process start.
    namespace L = avm::launcher;
    L::BootOptions bo;
    bo.timeout = 300s;
    bo.wait_until = L::ReadyCheck::Agent;
    double t_agent = -1, t_ssh = -1;
    try {
      auto waited = clock_type::now();
      L::BootResult br = L::await_vm(vm.handle(), bo);
      double offset = secs(waited - t0);
      for (const auto& p : br.timings) {
        double at = offset + std::chrono::duration<double>(p.at).count();
        if (p.check == L::ReadyCheck::Ssh) t_ssh = at;
        if (p.check == L::ReadyCheck::Agent) t_agent = at;
      }
      // What the banner promises: a login with the session's key works.
      if (ssh(vm, s, s.client_key(), "true", 60s).exit_code != 0) {
        std::fprintf(stderr, "run %d: sshd answered but refused the session's key\n", i + 1);
        t_ssh = t_agent = -1;
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "run %d: not ready: %s\n", i + 1, e.what());
      continue;
    }
    if (t_agent >= 0) agent.push_back(t_agent);
    if (t_ssh >= 0) sshd.push_back(t_ssh);
    auto t1 = clock_type::now();
    vm.qmp().execute("system_powerdown");
    if (vm.qmp().wait_event("SHUTDOWN", t1 + 120s) && vm.wait_exit(60s))
      off.push_back(secs(clock_type::now() - t1));
    std::fprintf(stderr, "run %d: probe %.2fs, agent running %.2fs, sshd %.2fs, power-off %.2fs\n",
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
  std::printf("  %-40s %7.1fs  x%.1f baseline  (goal 10s)\n", "QEMU start -> agent running (ready)", median(agent),
              median(agent) / base);
  std::printf("  %-40s %7.1fs  x%.1f baseline  (goal 10s)\n", "QEMU start -> sshd banner", median(sshd),
              median(sshd) / base);
  std::printf("  %-40s %7.1fs  (goal 5s)\n", "power button -> QEMU exit", median(off));
  std::printf("  %-40s %7.3fs first boot, %.3fs later boots\n", "prepare_share_for_guest, 10k files",
              first, again);
  return 0;
}
