// The warm pool: VMs of the default image booted ahead of any session, so a
// spawn takes one instead of a cold boot (docs/design.md, "Warm pool").
//
// A slot is a folder root/.pool/<id>/ (the VM's 9p share, carrying the
// pool-slot marker and no repo: the guest boots to its guest agent and
// waits) and a host-only record root/.pool/.host/<id>/slot.json. The slot's
// id is the id its session will have: QEMU's -name and the per-connection
// helpers' --dir (root/.host/<id>, absent until the claim, so they refuse
// everything before it) are fixed at boot and right after it. A spawn takes
// a slot under the pool lock by renaming it out of the pool, moves the
// session's files in, renames it to root/<id> and tells the guest through
// its guest agent (libexec/agent-vm/claim).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "launcher/vm.h"
#include "sessions/lifecycle.h"
#include "sessions/store.h"
#include "util/platform.h"

namespace avm {
class Progress;
}

namespace avm::sessions {

class VmDriver;

// What a pooled VM was booted with; a spawn takes one only when all match.
struct PoolShape {
  std::string image = "default";
  unsigned memory_mib = kDefaultMemoryMib;
  unsigned cpus = kDefaultCpus;
  std::string net = "restricted";
  bool operator==(const PoolShape&) const = default;
};

// What the pool should hold (root/.pool/.host/pool.json).
struct PoolConfig {
  unsigned size = 0;
  PoolShape shape;
};
std::string format_pool_config(const PoolConfig& c);
PoolConfig parse_pool_config(std::string_view text);  // avm::Error when broken

// One slot's record, host-only (root/.pool/.host/<id>/slot.json).
struct SlotRecord {
  // Taken: a spawn renamed it out of the pool (owner: that spawn) and has not
  // made it its session's yet.
  enum class State { Booting, Ready, Taken };
  std::string id;
  PoolShape shape;
  State state = State::Booting;
  std::string created;  // UTC ISO-8601
  std::uint16_t ssh_port = 0;
  std::optional<long long> pid;  // QEMU, once started
  unsigned long long start_time = 0;
  std::string accel;
  long long owner_pid = 0;  // the process that boots it (until Ready), or took it
  unsigned long long owner_start = 0;
  // Taken by agent-resume: the session whose files it moves into the slot's
  // folder (empty for a spawn). Written before the first of them moves, so a
  // take abandoned halfway gives them back (recover_take).
  std::string resuming;
  // The pooled boot started sshd and the agent, which waits for its claim
  // (the image's manifest says `pooled_agent`), and was ready only once both
  // were: a claim need not wait for sshd again unless it restarted it.
  bool agent_waits = false;
};
std::string format_slot(const SlotRecord& r);
SlotRecord parse_slot(std::string_view text);  // avm::Error when broken
const char* to_string(SlotRecord::State s);

// ---- pure decisions ---------------------------------------------------------

enum class SlotHealth { Booting, Ready, Silent, Dead };
const char* to_string(SlotHealth h);

// What was observed of a slot.
struct SlotSeen {
  std::optional<SlotRecord> record;  // nullopt: slot.json missing or broken
  bool owner_alive = false;          // the booting process still runs
  bool qemu_alive = false;           // the recorded pid is this slot's QEMU
  bool asked = false;                // the monitor and guest agent were asked
  std::string qmp_status;            // "running", ...; empty when no answer
  bool guest_up = false;             // the guest agent answered
};
// A slot booted to the end, whose QEMU lives, is Ready when asked and its
// monitor says running and its guest agent answers (or when not asked); Silent
// when asked and the monitor or guest agent did not answer in time (a loaded
// host: not handed out, and not thrown away either); Dead when its QEMU is gone
// or the monitor says it does not run. Booting while the process that boots it
// lives and QEMU (once started) does too; else Dead (abandoned by a booter
// that died).
SlotHealth classify_slot(const SlotSeen& s);
// A taken slot (root/.pool/.taken-<id>) is abandoned when the spawn that took
// it is gone before making it its session's, or nobody recorded the take.
bool take_abandoned(const SlotSeen& s);
// What the sweep does with a taken slot: keep it (its taker still works on
// it), discard it (a spawn's: its VM stopped, its folders removed), or first
// hand the session's files back to the session a resume was moving into it
// (sessions/handover.h), then discard it.
enum class TakeRecovery { Keep, Discard, HandBack };
TakeRecovery recover_take(const SlotSeen& s);

// One slot as the decisions see it.
struct SlotView {
  std::string id;
  PoolShape shape;
  SlotHealth health = SlotHealth::Dead;
  std::string created;
};
// The slot a spawn of `want` takes: the oldest Ready one of that shape.
std::optional<std::string> choose_slot(const std::vector<SlotView>& slots, const PoolShape& want);

// From `slots` to `target`: dead slots and slots of another shape go; of the
// live ones, the newest beyond the size go (booting ones first); the rest is
// filled with new boots.
struct PoolPlan {
  unsigned boot = 0;
  std::vector<std::string> remove;
  bool operator==(const PoolPlan&) const = default;
};
PoolPlan plan_pool(const std::vector<SlotView>& slots, const PoolConfig& target);

// Where the readiness wait after a claim starts. At the agent when the pooled
// boot already saw sshd's banner (`agent_waits`) and the claim did not
// restart sshd (it prints a line `sshd-restarted` when it did: an sshd that
// takes its host key once); else at sshd, as after a boot.
launcher::ReadyCheck claim_wait_from(const SlotRecord& slot, std::string_view claim_output);

// ---- the pool on disk and its VMs ---------------------------------------------

struct PoolPaths {
  explicit PoolPaths(std::filesystem::path sessions_root) : root(std::move(sessions_root)) {}
  std::filesystem::path root;
  std::filesystem::path dir() const { return root / ".pool"; }
  std::filesystem::path host() const { return dir() / ".host"; }
  std::filesystem::path config() const { return host() / "pool.json"; }
  std::filesystem::path lock() const { return root / ".locks" / ".pool.lock"; }
  std::filesystem::path refill_log() const { return host() / "refill.log"; }
  std::filesystem::path slot(std::string_view id) const { return dir() / std::string(id); }
  std::filesystem::path taken(std::string_view id) const { return dir() / (".taken-" + std::string(id)); }
  std::filesystem::path record_dir(std::string_view id) const { return host() / std::string(id); }
  std::filesystem::path record(std::string_view id) const { return record_dir(id) / "slot.json"; }
  // The slot as its VM sees it: the share, and the host-only folder its
  // helpers are pointed at (the session's, root/.host/<id>, made at the claim).
  SessionPaths slot_paths(std::string_view id) const {
    return SessionPaths(slot(id), root / ".host" / std::string(id));
  }
};

// The pool's configuration; size 0 when there is none.
PoolConfig load_pool_config(const SessionStore& store);

// One slot, observed (agent-vm pool).
struct SlotStatus {
  std::string id;
  std::optional<SlotRecord> record;
  SlotHealth health = SlotHealth::Dead;
  std::optional<platform::ProcessMemory> memory;  // QEMU's, when it runs
};
std::vector<SlotStatus> pool_status(const SessionStore& store, VmDriver& driver);

// Sets the pool's size and shape, removes what does not fit, and boots the
// missing slots, waiting for them. Returns how many boots failed.
unsigned resize_pool(const SessionStore& store, const PoolConfig& config, Progress& progress, VmDriver& driver);
// Boots what is missing to the configured size (agent-vm pool --refill).
unsigned refill_pool(const SessionStore& store, Progress& progress, VmDriver& driver);
// Starts `agent-vm pool --refill` detached (a claim's replacement boot).
void start_refill(const SessionStore& store);

// A slot taken out of the pool for one spawn or resume. Unless released,
// its VM is stopped and its folders removed when it goes (a resume's
// session files in it handed back first).
class TakenSlot {
 public:
  TakenSlot(PoolPaths pp, SlotRecord rec, VmDriver& driver);
  TakenSlot(TakenSlot&& o) noexcept;
  TakenSlot& operator=(TakenSlot&&) = delete;
  ~TakenSlot();

  const SlotRecord& record() const noexcept { return rec_; }
  const std::string& id() const noexcept { return rec_.id; }
  // Its share now (root/.pool/.taken-<id>, then root/<id> once committed).
  const std::filesystem::path& dir() const noexcept { return dir_; }
  void moved_to(std::filesystem::path d) { dir_ = std::move(d); }
  launcher::VmHandle handle() const;
  // Stops the VM (quit, then SIGKILL).
  void stop_vm() noexcept;
  // The slot is a session's now: only its host-only record goes.
  void release() noexcept;

 private:
  PoolPaths pp_;
  SlotRecord rec_;
  VmDriver* driver_;
  std::filesystem::path dir_;
  bool released_ = false;
};

// Under the pool lock: removes dead slots, then takes the slot
// choose_slot() picks for `want`, renaming it out of the pool. nullopt when
// there is no pool or no matching ready slot.
// Slots passed over (silent) or removed (dead) on the way are warned about.
// `resuming` names the session a resume will move into it (empty: a spawn).
std::optional<TakenSlot> take_slot(const SessionStore& store, const PoolShape& want, VmDriver& driver,
                                   Progress& progress, std::string_view resuming = {});

// Under the pool lock: what takes abandoned by a spawn or resume that died
// left (take_slot does it too). A resume cut short between its take and its
// claim has the session's files handed back to root/<id> once that
// session's lock is free, before its VM is stopped.
void recover_takes(const SessionStore& store, VmDriver& driver, Progress& progress);

}  // namespace avm::sessions
