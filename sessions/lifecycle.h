// What the agent-* commands do to a session: spawn, resume, stop, remove,
// observe, exec. Each takes the session's lock for as long as it changes
// the session; observing takes none. meta.json records intent and history;
// status is always observed from the VM itself.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "launcher/stop_machine.h"
#include "sessions/session_vm.h"
#include "sessions/status.h"
#include "sessions/store.h"
#include "sessions/workback.h"

namespace avm {
class Progress;
}

namespace avm::sessions {

// The outside world: image, QEMU, ports, the VM itself (sessions/vm_driver.h).
// Each entry point below has an overload that takes one; without it the real
// one (default_driver()) is used.
class VmDriver;

// Defaults (also shown in --help).
inline constexpr unsigned kDefaultCpus = 2;
inline constexpr unsigned kDefaultMemoryMib = 2048;  // the real agent peaks near 800 MB under TCG
inline constexpr std::chrono::seconds kDefaultBootTimeout{300};

// Network modes (see README): restricted (default) lets the agent reach only
// the allowed hosts through the egress proxy; full is QEMU's plain user
// networking; none has no network device at all.
const std::vector<std::string>& default_allow_hosts();

struct StartOptions {
  std::optional<std::uint16_t> port;      // --port: this one or fail
  std::optional<std::string> accel;       // --accel (else $AGENT_VM_ACCEL, else auto)
  std::optional<unsigned> cpus;           // keep the session's when unset
  std::optional<unsigned> memory_mib;
  std::optional<std::string> image;       // keep the session's when unset
  bool wait = true;                       // false: return once QEMU runs and the share is confirmed
  std::chrono::milliseconds boot_timeout = kDefaultBootTimeout;
  // Set (by a signal handler) to give up: a clone is abandoned (and its
  // session removed), a booting VM stopped (and its session marked failed).
  const std::atomic<bool>* cancel = nullptr;
  // The token budget (input+output) the model gateway enforces: spawn sets
  // it, resume raises (or sets) it. Unset: keep the session's (none at first).
  std::optional<long long> max_tokens;
  // resume only: a new instruction for the agent, written to followup.txt
  // before the boot; without it a stale followup.txt is removed.
  std::optional<std::string> followup;
};

struct SpawnRequest {
  std::string repo;
  std::string ref;                        // empty: the remote's default branch
  std::string prompt;
  std::optional<std::string> agent_cmd;   // replaces opencode in the guest
  std::vector<std::string> env_names;     // extra variables copied into the env file
  // The model API the gateway forwards to (the user's ANTHROPIC_BASE_URL);
  // unset: https://api.anthropic.com. See launcher::parse_upstream.
  std::optional<std::string> upstream;
  std::string net = "restricted";         // restricted | full | none
  std::vector<std::string> allow_hosts;   // added to default_allow_hosts() when restricted
  std::optional<std::string> id;          // for tests and scripts: a chosen id
  StartOptions start;
};

struct StartResult {
  std::string id;
  std::uint16_t ssh_port = 0;
  std::string accel;         // "kvm" / "tcg"
  std::string accel_reason;  // one line: why
  bool ready = false;        // false with --no-wait
  std::vector<std::pair<std::string, std::chrono::milliseconds>> timings;  // check -> when it passed
  // Where the time went, in order: "clone" (spawn only), "setup" (everything
  // else before QEMU runs: keys, meta.json, image, accelerator, the share),
  // "boot" (QEMU started to ready, or to the share with --no-wait).
  std::vector<std::pair<std::string, std::chrono::milliseconds>> phases;
};

// Creates the session (clone, keys, env, prompt), then boots it. A failure
// before the VM starts leaves nothing behind; a VM that fails to boot leaves
// the session marked failed, with the reason, for `logs` and `resume`.
StartResult spawn(const SessionStore& store, const SpawnRequest& req, Progress& progress);
StartResult spawn(const SessionStore& store, const SpawnRequest& req, Progress& progress, VmDriver& driver);

// Boots a new VM on a stopped session's folder; the agent continues.
StartResult resume(const SessionStore& store, const std::string& id_or_prefix,
                   const StartOptions& opts, Progress& progress);
StartResult resume(const SessionStore& store, const std::string& id_or_prefix,
                   const StartOptions& opts, Progress& progress, VmDriver& driver);

struct StopResult {
  std::string id;
  bool was_running = false;
  std::string method;  // "guest-poweroff", "quit", "sigterm", "sigkill"; empty if not running
  std::string detail;
  std::string trail;
  std::chrono::milliseconds took{0};
  DefuseReport defused;  // what was removed from the session repo once the VM was gone
};
StopResult stop(const SessionStore& store, const std::string& id_or_prefix,
                const launcher::StopPolicy& policy, Progress& progress);
StopResult stop(const SessionStore& store, const std::string& id_or_prefix,
                const launcher::StopPolicy& policy, Progress& progress, VmDriver& driver);

// Pauses a running session's VM (QMP stop: its vCPUs stand still, its RAM
// stays; QEMU's main loop keeps the monitors, network and share) or
// continues a paused one (QMP cont), then steps the guest's clock to the
// host's through the guest agent (it stood still while paused). Asking for
// the state it is in does nothing (`changed` false, `message` says so); a
// session with no live, answering QEMU is refused (sessions/pause.h).
struct PauseResult {
  std::string id;
  bool changed = false;
  std::string status;   // QEMU's status afterwards ("paused", "running")
  std::string message;  // when nothing changed: why
  // unpause only: the guest's clock minus the host's before it was stepped,
  // or why it could not be stepped.
  std::optional<std::chrono::nanoseconds> clock_offset;
  std::string clock_error;
};
inline constexpr std::chrono::milliseconds kClockStepTimeout{10000};
PauseResult pause(const SessionStore& store, const std::string& id_or_prefix, bool paused);
PauseResult pause(const SessionStore& store, const std::string& id_or_prefix, bool paused, VmDriver& driver);

// Removes a session. A running one is refused unless `force` (then it is
// stopped with quit first). Works on sessions with a corrupt meta.json.
void remove(const SessionStore& store, const std::string& id_or_prefix, bool force,
            Progress& progress);
void remove(const SessionStore& store, const std::string& id_or_prefix, bool force,
            Progress& progress, VmDriver& driver);

// What agent-list shows of one session (SessionStatus) is in sessions/status.h;
// list and status are defined in sessions/observe.cc, apart from the rest.
// Every session, observed concurrently, each within `per_vm_timeout`.
// Without `ask_guest` only QEMU is asked (its monitor answers from its own
// main loop; the guest agent needs the guest's vCPU, slow on a busy TCG
// host): guest and agent are then "-".
std::vector<SessionStatus> list(const SessionStore& store,
                                std::chrono::milliseconds per_vm_timeout = std::chrono::milliseconds(3000),
                                bool ask_guest = true);
std::vector<SessionStatus> list(const SessionStore& store, VmDriver& driver,
                                std::chrono::milliseconds per_vm_timeout = std::chrono::milliseconds(3000),
                                bool ask_guest = true);
// One session, observed.
SessionStatus status(const SessionStore& store, const std::string& id_or_prefix,
                     std::chrono::milliseconds timeout = std::chrono::milliseconds(3000));
SessionStatus status(const SessionStore& store, VmDriver& driver, const std::string& id_or_prefix,
                     std::chrono::milliseconds timeout = std::chrono::milliseconds(3000));

struct ExecRequest {
  std::vector<std::string> argv;
  bool as_root = false;  // default: as the agent user, in /session/repo, with the agent's environment
  std::string input;     // stdin for the command
  std::chrono::milliseconds timeout{std::chrono::minutes(10)};
};
struct ExecResult {
  int exit_code = -1;
  std::string out, err;
};
ExecResult exec(const SessionStore& store, const std::string& id_or_prefix, const ExecRequest& req);
ExecResult exec(const SessionStore& store, const std::string& id_or_prefix, const ExecRequest& req,
                VmDriver& driver);

// What attach needs to reach a running session.
struct AttachTarget {
  std::string id;
  std::uint16_t port = 0;
  std::filesystem::path identity, host_pub;
};
AttachTarget attach_target(const SessionStore& store, const std::string& id_or_prefix);

// The console log of a session (current boot), and whether its VM runs.
struct LogTarget {
  std::string id;
  std::filesystem::path console_log;
  std::filesystem::path previous_console_log;  // the boot before
  std::filesystem::path gateway_log, egress_log;  // the network audit (host-only folder)
  std::optional<long long> pid;       // to follow until it exits
  unsigned long long start_time = 0;
  std::string vm_name;
};
LogTarget log_target(const SessionStore& store, const std::string& id_or_prefix);

}  // namespace avm::sessions
