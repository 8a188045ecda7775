// One VM's life, seen from the host: booting it to readiness, observing it,
// running a command in it, stopping it. Knows QEMU, QMP and QGA; knows
// nothing of sessions (their folders, meta.json, ids).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "launcher/ports.h"
#include "launcher/readiness.h"
#include "launcher/stop_machine.h"
#include "launcher/vm_spec.h"
#include "util/error.h"

namespace avm::launcher {

// Progress of a slow step: a stage name and, optionally, a detail line.
using ProgressFn = std::function<void(const std::string& stage, const std::string& detail)>;

// Where a running VM can be found.
struct VmHandle {
  std::string name;  // VmSpec::name: "agent-vm-<id>"
  pid_t pid = -1;
  unsigned long long start_time = 0;
  std::filesystem::path qmp_socket;      // control monitor (start, stop)
  std::filesystem::path observe_socket;  // second monitor for observers (list)
  std::filesystem::path qga_socket;
  std::filesystem::path console_log;
  std::uint16_t ssh_port = 0;
};

// The second QMP monitor, next to the first: observers never queue behind
// a stop that holds the control monitor.
std::filesystem::path observe_socket_for(const std::filesystem::path& qmp_socket);
// The host file behind the agent's port (VmSpec::agent_port_log), next to the monitor.
std::filesystem::path agent_port_log_for(const std::filesystem::path& qmp_socket);

struct BootOptions {
  std::chrono::milliseconds timeout{180000};  // whole readiness wait
  // Between failed checks: each try is a connect or a file read, and a later
  // try adds its wait to the spawn.
  std::chrono::milliseconds retry{50};
  ReadyCheck wait_until = ReadyCheck::Agent;  // ReadyCheck::Share for --no-wait
  std::filesystem::path qemu_log;             // QEMU's own stderr
  ProgressFn progress;
  // Called once QEMU runs, before any waiting: record the pid now, so a
  // crash of this process leaves it findable.
  std::function<void(const VmHandle&)> on_started;
  // Set (by a signal handler) to give up: QEMU is stopped and BootError
  // thrown at the next step of the wait.
  const std::atomic<bool>* cancel = nullptr;
  // The first check of the wait (await_vm: a VM that passed the earlier ones).
  ReadyCheck first = ReadyCheck::Qmp;
  // A warm-pool VM's boot: its agent check passes once the agent waits for
  // its claim (/run/agent-vm/agent/waiting), not once it runs a session's.
  bool pooled = false;
};

struct BootResult {
  VmHandle vm;
  std::vector<ReadinessMachine::Passed> timings;  // when each check passed
};

// Failure to boot. QEMU has been stopped when this is thrown; what() says
// what went wrong, `console_tail` the guest's last words.
class BootError : public Error {
 public:
  BootError(const std::string& what, std::string hint, std::string console_tail, bool port_taken);
  const std::string& console_tail() const noexcept { return console_tail_; }
  // QEMU could not bind the SSH forward: another port may do.
  bool port_taken() const noexcept { return port_taken_; }

 private:
  std::string console_tail_;
  bool port_taken_;
};

// Starts QEMU detached for `spec` (its -name, sockets and port are the spec's;
// `port` is the reservation whose lock QEMU inherits), then waits for
// readiness. On any failure QEMU is stopped (quit, then SIGKILL) and
// BootError is thrown.
BootResult boot_vm(const VmSpec& spec, PortReservation& port, const BootOptions& opts);

// The readiness wait of boot_vm alone, for a VM that already runs (a
// warm-pool VM at its claim), from opts.first to opts.wait_until. On failure
// the VM is stopped and BootError thrown, as boot_vm does.
BootResult await_vm(const VmHandle& vm, const BootOptions& opts);

// What is observed of a VM right now. Each field is filled by asking: the
// process table, the monitor, the guest agent. Nothing is remembered.
struct VmObservation {
  enum class Process { Running, Frozen, Exited } process = Process::Exited;
  // query-status' status ("running", "paused", "shutdown", ...); empty when
  // the monitor did not answer; `monitor_error` says why.
  std::string qmp_status;
  std::string monitor_error;
  // Up: the guest agent answered (deep), or holds its port open (QEMU's
  // word); NoAnswer: asked and silent; Closed: its port is not open.
  enum class Guest { Up, NoAnswer, Closed, Unknown } guest = Guest::Unknown;
  enum class Agent { Running, Exited, Unknown } agent = Agent::Unknown;
  std::string agent_detail;
};

struct ObserveOptions {
  std::chrono::milliseconds timeout{3000};  // for the whole observation
  // Also ask the guest agent (round trips the guest's vCPU must answer, slow
  // on a busy TCG host). Without it GUEST and AGENT come from QEMU alone:
  // whether the guest holds the guest agent's and the agent's ports open.
  bool guest = true;
};

// GUEST and AGENT from QEMU's chardevs (query-chardev) of a running VM: the
// guest agent's port ("qga") and the agent's ("agent", VmSpec::agent_port_log).
// The agent runs while its port is open; closed after it was opened
// (`agent_port_used`: the port's log is not empty) it has ended; never opened
// (still starting, or an image without the port) is Unknown. A VM without
// an agent port leaves the agent Unknown.
struct ChardevOpen {
  std::string label;       // the chardev's id on QEMU's command line
  bool frontend_open = false;
};
void observe_ports(VmObservation& o, const std::vector<ChardevOpen>& chardevs, bool agent_port_used);
VmObservation observe_vm(const VmHandle& vm, const ObserveOptions& opts = {});

// Whether the console log says the guest powered itself off cleanly.
bool console_shows_poweroff(const std::filesystem::path& console_log);

struct StopReport {
  StopMethod method;
  std::string detail;  // in words: "the guest powered off (guest-shutdown)"
  std::string trail;   // the steps taken: "power button, quit"
  std::chrono::milliseconds took{0};
};
// Stops a running VM (the machine in stop_machine.h, driven for real).
// Throws avm::Error if QEMU survives SIGKILL.
StopReport stop_vm(const VmHandle& vm, const StopPolicy& policy, const ProgressFn& progress = {});

// Pauses (QMP `stop`) or continues (QMP `cont`) the VM's vCPUs through its
// control monitor; returns query-status' answer afterwards ("paused",
// "running"). QEMU's own main loop (monitors, network, the share) keeps
// running while the vCPUs stand still.
std::string set_vm_paused(const VmHandle& vm, bool paused, std::chrono::milliseconds timeout);

// Steps the guest's wall clock to the host's through the guest agent
// (guest-get-time, then guest-set-time): a paused guest's clock stood still
// for as long as it was paused. Returns the guest's clock minus the host's
// before the step. Throws avm::Error when the guest agent does not answer.
std::chrono::nanoseconds step_guest_clock(const VmHandle& vm, std::chrono::milliseconds timeout);

// Runs argv in the guest through the guest agent and returns its result.
struct GuestExecResult {
  int exit_code = -1;
  std::optional<int> signal;
  std::string out, err;
};
GuestExecResult exec_in_vm(const VmHandle& vm, const std::vector<std::string>& argv,
                           std::chrono::milliseconds timeout, std::string_view input = {});

// True when something answers on 127.0.0.1:port with an SSH banner within
// `timeout` (QEMU's forward accepts even before the guest listens; only the
// banner proves sshd).
bool ssh_banner_ok(std::uint16_t port, std::chrono::milliseconds timeout, std::string* detail = nullptr);

}  // namespace avm::launcher
