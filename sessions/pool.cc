#include "sessions/pool.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <future>

#include "json/fields.h"
#include "launcher/ports.h"
#include "sessions/handover.h"
#include "sessions/ids.h"
#include "sessions/session_vm.h"
#include "sessions/vm_driver.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/file.h"
#include "util/flock.h"
#include "util/paths.h"
#include "util/process.h"
#include "util/progress.h"
#include "util/remove_tree.h"
#include "util/strings.h"
#include "util/timestamp.h"

namespace avm::sessions {

namespace fs = std::filesystem;
namespace bj = boost::json;
namespace L = avm::launcher;
using namespace std::chrono;

namespace {

constexpr milliseconds kPoolLockTimeout{120000};
// How long a ready slot's monitor and guest agent get to answer.
constexpr milliseconds kAskTimeout{5000};

bj::object shape_json(const PoolShape& s) {
  return {{"image", s.image}, {"memory_mib", s.memory_mib}, {"cpus", s.cpus}, {"net", s.net}};
}

PoolShape shape_from(const json::Fields& f) {
  PoolShape s;
  s.image = f.str("image");
  s.memory_mib = f.integer<unsigned>("memory_mib", 1);
  s.cpus = f.integer<unsigned>("cpus", 1);
  s.net = f.str("net");
  return s;
}

bj::value parse_json(std::string_view text, const char* what) {
  std::error_code ec;
  bj::value v = bj::parse(bj::string_view(text.data(), text.size()), ec);
  if (ec) throw Error(std::string(what) + " is not JSON: " + ec.message());
  return v;
}

}  // namespace

std::string format_pool_config(const PoolConfig& c) {
  bj::object o{{"size", c.size}, {"shape", shape_json(c.shape)}};
  return bj::serialize(o) + "\n";
}

PoolConfig parse_pool_config(std::string_view text) {
  bj::value v = parse_json(text, "pool.json");
  try {
    json::Fields f(v, "");
    PoolConfig c;
    c.size = f.integer<unsigned>("size");
    c.shape = shape_from(f.obj("shape"));
    return c;
  } catch (const std::exception& e) {
    throw Error(std::string("pool.json: ") + e.what());
  }
}

const char* to_string(SlotRecord::State s) {
  switch (s) {
    case SlotRecord::State::Booting: return "booting";
    case SlotRecord::State::Ready: return "ready";
    case SlotRecord::State::Taken: return "taken";
  }
  return "?";
}

const char* to_string(SlotHealth h) {
  switch (h) {
    case SlotHealth::Booting: return "booting";
    case SlotHealth::Ready: return "ready";
    case SlotHealth::Silent: return "silent";
    case SlotHealth::Dead: return "dead";
  }
  return "?";
}

std::string format_slot(const SlotRecord& r) {
  bj::object o{{"id", r.id},
               {"shape", shape_json(r.shape)},
               {"state", to_string(r.state)},
               {"created", r.created},
               {"ssh_port", r.ssh_port},
               {"start_time", r.start_time},
               {"accel", r.accel},
               {"owner_pid", r.owner_pid},
               {"owner_start", r.owner_start}};
  if (!r.resuming.empty()) o["resuming"] = r.resuming;
  if (r.agent_waits) o["agent_waits"] = true;
  o["pid"] = r.pid ? bj::value(*r.pid) : bj::value(nullptr);
  return bj::serialize(o) + "\n";
}

SlotRecord parse_slot(std::string_view text) {
  bj::value v = parse_json(text, "slot.json");
  try {
    json::Fields f(v, "", json::Policy{json::Null::Absent});
    SlotRecord r;
    r.id = f.str("id");
    check_id(r.id);
    r.shape = shape_from(f.obj("shape"));
    std::string st = f.str("state");
    if (st == "ready")
      r.state = SlotRecord::State::Ready;
    else if (st == "booting")
      r.state = SlotRecord::State::Booting;
    else if (st == "taken")
      r.state = SlotRecord::State::Taken;
    else
      throw Error("state '" + st + "' is not booting, ready or taken");
    r.created = f.str("created");
    r.ssh_port = f.integer<std::uint16_t>("ssh_port");
    r.pid = f.opt_integer<long long>("pid", 1);
    r.start_time = f.integer<unsigned long long>("start_time");
    r.accel = f.str("accel");
    r.owner_pid = f.integer<long long>("owner_pid");
    r.owner_start = f.integer<unsigned long long>("owner_start");
    r.resuming = f.opt_str("resuming").value_or("");
    if (!r.resuming.empty()) check_id(r.resuming);
    r.agent_waits = f.opt_bool("agent_waits").value_or(false);
    return r;
  } catch (const std::exception& e) {
    throw Error(std::string("slot.json: ") + e.what());
  }
}

// ---- pure decisions -----------------------------------------------------------

SlotHealth classify_slot(const SlotSeen& s) {
  if (!s.record) return SlotHealth::Dead;
  if (s.record->state == SlotRecord::State::Booting) {
    if (!s.owner_alive) return SlotHealth::Dead;
    if (s.record->pid && !s.qemu_alive) return SlotHealth::Dead;
    return SlotHealth::Booting;
  }
  if (!s.record->pid || !s.qemu_alive || s.record->state == SlotRecord::State::Taken) return SlotHealth::Dead;
  if (!s.asked) return SlotHealth::Ready;
  if (s.qmp_status.empty()) return SlotHealth::Silent;
  if (s.qmp_status != "running") return SlotHealth::Dead;
  return s.guest_up ? SlotHealth::Ready : SlotHealth::Silent;
}

bool take_abandoned(const SlotSeen& s) {
  return !s.record || s.record->state != SlotRecord::State::Taken || !s.owner_alive;
}

TakeRecovery recover_take(const SlotSeen& s) {
  if (!take_abandoned(s)) return TakeRecovery::Keep;
  // The record names the session only once it is the resume's take.
  if (s.record && s.record->state == SlotRecord::State::Taken && !s.record->resuming.empty())
    return TakeRecovery::HandBack;
  return TakeRecovery::Discard;
}

std::optional<std::string> choose_slot(const std::vector<SlotView>& slots, const PoolShape& want) {
  const SlotView* best = nullptr;
  for (const auto& s : slots) {
    if (s.health != SlotHealth::Ready || !(s.shape == want)) continue;
    if (!best || s.created < best->created || (s.created == best->created && s.id < best->id)) best = &s;
  }
  if (!best) return std::nullopt;
  return best->id;
}

launcher::ReadyCheck claim_wait_from(const SlotRecord& slot, std::string_view claim_output) {
  bool sshd_restarted = false;
  for (const auto& line : split(claim_output, '\n'))
    if (line == "sshd-restarted") sshd_restarted = true;
  return slot.agent_waits && !sshd_restarted ? L::ReadyCheck::Agent : L::ReadyCheck::Ssh;
}

PoolPlan plan_pool(const std::vector<SlotView>& slots, const PoolConfig& target) {
  PoolPlan plan;
  std::vector<const SlotView*> live;
  for (const auto& s : slots) {
    if (s.health == SlotHealth::Dead || !(s.shape == target.shape))
      plan.remove.push_back(s.id);
    else
      live.push_back(&s);
  }
  // Keep ready ones before booting ones, older before newer.
  std::sort(live.begin(), live.end(), [](const SlotView* a, const SlotView* b) {
    bool ra = a->health == SlotHealth::Ready, rb = b->health == SlotHealth::Ready;
    if (ra != rb) return ra;
    if (a->created != b->created) return a->created < b->created;
    return a->id < b->id;
  });
  for (size_t i = target.size; i < live.size(); ++i) plan.remove.push_back(live[i]->id);
  if (live.size() < target.size) plan.boot = target.size - static_cast<unsigned>(live.size());
  std::sort(plan.remove.begin(), plan.remove.end());
  return plan;
}

// ---- I/O ------------------------------------------------------------------------

namespace {

L::VmHandle slot_handle(const SlotRecord& r, const fs::path& dir) {
  Meta m;
  m.id = r.id;
  m.qemu_pid = r.pid;
  m.qemu_start_time = r.start_time;
  m.ssh_port = r.ssh_port;
  return vm_handle(m, SessionPaths(dir));
}

std::optional<SlotRecord> read_record(const PoolPaths& pp, const std::string& id) {
  try {
    auto text = read_file_if_exists(pp.record(id));
    if (!text) return std::nullopt;
    SlotRecord r = parse_slot(*text);
    if (r.id != id) return std::nullopt;
    return r;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

void write_record(const PoolPaths& pp, const SlotRecord& r) {
  write_file_atomic(pp.record(r.id), format_slot(r), 0600);
}

std::vector<std::string> slot_ids(const PoolPaths& pp) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(pp.dir(), ec)) {
    std::string name = e.path().filename().string();
    if (name.empty() || name[0] == '.' || !is_valid_id(name)) continue;
    out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool owner_alive(const SlotRecord& r) {
  if (r.owner_pid <= 0 || !proc_alive(static_cast<pid_t>(r.owner_pid))) return false;
  auto st = proc_start_time(static_cast<pid_t>(r.owner_pid));
  return st && *st == r.owner_start;
}

SlotSeen see_slot(const PoolPaths& pp, const std::string& id, VmDriver& driver, bool ask) {
  SlotSeen s;
  s.record = read_record(pp, id);
  if (!s.record) return s;
  s.owner_alive = owner_alive(*s.record);
  L::VmHandle h = slot_handle(*s.record, pp.slot(id));
  s.qemu_alive = s.record->pid && driver.alive(h);
  if (ask && s.qemu_alive && s.record->state == SlotRecord::State::Ready) {
    s.asked = true;
    L::ObserveOptions oo;
    oo.timeout = kAskTimeout;
    oo.guest = true;
    L::VmObservation o = driver.observe(h, oo);
    s.qmp_status = o.qmp_status;
    s.guest_up = o.guest == L::VmObservation::Guest::Up;
  }
  return s;
}

// Every slot, observed concurrently (one thread each).
std::vector<std::pair<std::string, SlotSeen>> see_slots(const PoolPaths& pp, VmDriver& driver, bool ask) {
  auto ids = slot_ids(pp);
  std::vector<std::future<SlotSeen>> fs_;
  for (const auto& id : ids)
    fs_.push_back(std::async(std::launch::async, [&pp, id, &driver, ask] { return see_slot(pp, id, driver, ask); }));
  std::vector<std::pair<std::string, SlotSeen>> out;
  for (size_t i = 0; i < ids.size(); ++i) out.emplace_back(ids[i], fs_[i].get());
  return out;
}

SlotView view_of(const std::string& id, const SlotSeen& s) {
  SlotView v;
  v.id = id;
  v.health = classify_slot(s);
  if (s.record) {
    v.shape = s.record->shape;
    v.created = s.record->created;
  }
  return v;
}

void stop_slot_vm(VmDriver& driver, const SlotRecord& r, const fs::path& dir) noexcept {
  try {
    if (!r.pid) return;
    L::VmHandle h = slot_handle(r, dir);
    if (!driver.alive(h)) return;
    L::StopPolicy forced;
    forced.force = true;
    driver.stop(h, forced, {});
  } catch (const std::exception&) {
  }
}

// Stops a slot's VM and removes its folders. The folder is renamed aside
// first, so a spawn never sees it half-removed.
void discard_slot(const PoolPaths& pp, const std::string& id, VmDriver& driver) {
  auto rec = read_record(pp, id);
  if (rec) stop_slot_vm(driver, *rec, pp.slot(id));
  std::error_code ec;
  fs::path aside = pp.dir() / (".removing-" + id);
  if (::rename(pp.slot(id).c_str(), aside.c_str()) == 0)
    remove_tree(aside);
  else
    remove_tree(pp.slot(id));
  remove_tree(pp.record_dir(id));
}

// Under the pool lock: slots taken by spawns or resumes that died before
// their claim (a resume's session files go back first; then the VM is
// stopped and the folders go), and the records of taken slots that became
// sessions (only the record: the VM is the session's now).
void sweep_taken(const PoolPaths& pp, VmDriver& driver, Progress& progress) {
  std::error_code ec;
  std::vector<std::string> taken;
  for (const auto& e : fs::directory_iterator(pp.dir(), ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind(".taken-", 0) == 0 && is_valid_id(name.substr(7))) taken.push_back(name.substr(7));
  }
  SessionStore store(pp.root);
  for (const auto& id : taken) {
    SlotSeen s;
    s.record = read_record(pp, id);
    if (s.record) s.owner_alive = owner_alive(*s.record);
    TakeRecovery what = recover_take(s);
    if (what == TakeRecovery::Keep) continue;
    if (what == TakeRecovery::HandBack) {
      const std::string& sid = s.record->resuming;
      // Under the session's lock; a command holding it now leaves this for
      // the next sweep.
      auto l = SessionLock::try_acquire(store.lock_path(sid), sid);
      if (!l) continue;
      try {
        hand_back(pp.taken(id), store.dir(sid));
      } catch (const std::exception& e) {
        progress.warn("pool VM " + id + " holds files of session " + sid + " that could not be put back (" +
                      e.what() + "); left in " + pp.taken(id).string());
        continue;
      }
      store.unlink_host_dir(sid, id);
      progress.warn("pool VM " + id + " was taken by a resume of session " + sid +
                    " that ended before its claim; the session's files were put back, the VM stopped and removed");
    } else {
      progress.warn("pool VM " + id + " was taken by a spawn that ended before its claim; stopped and removed");
    }
    if (s.record) stop_slot_vm(driver, *s.record, pp.taken(id));
    remove_tree(pp.taken(id));
    remove_tree(pp.record_dir(id));
  }
  for (const auto& e : fs::directory_iterator(pp.host(), ec)) {
    std::string id = e.path().filename().string();
    if (!is_valid_id(id) || fs::exists(fs::symlink_status(pp.slot(id))) ||
        fs::exists(fs::symlink_status(pp.taken(id))))
      continue;
    SlotSeen s;
    s.record = read_record(pp, id);
    if (s.record && s.record->state == SlotRecord::State::Taken && !owner_alive(*s.record))
      remove_tree(pp.record_dir(id));
  }
}

FileLock pool_lock(const PoolPaths& pp) {
  make_private_dir(pp.root);
  make_private_dir(pp.lock().parent_path());
  return FileLock::acquire(pp.lock(), kPoolLockTimeout);
}

void prepare_dirs(const PoolPaths& pp) {
  make_private_dir(pp.root);
  make_private_dir(pp.dir());
  make_private_dir(pp.host());
}

// Makes the folders of a new slot (under the pool lock): its share with the
// marker, built aside and renamed into place, and its record.
SlotRecord new_slot(const PoolPaths& pp, const SessionStore& store, const PoolShape& shape) {
  for (int attempt = 0; attempt < 16; ++attempt) {
    std::string id = generate_id();
    if (store.exists(id) || fs::exists(fs::symlink_status(pp.slot(id))) ||
        fs::exists(fs::symlink_status(store.host_dir(id))))
      continue;
    fs::path tmp = pp.dir() / (".new-" + id);
    remove_tree(tmp);
    make_private_dir(tmp);
    SessionPaths sp(tmp);
    make_private_dir(sp.ssh());
    make_private_dir(sp.run());
    write_file_atomic(tmp / std::string(kPoolSlotMarker), "a warm-pool VM waiting for its session\n", 0600);
    SlotRecord r;
    r.id = id;
    r.shape = shape;
    r.state = SlotRecord::State::Booting;
    r.created = utc_now_ms();
    r.owner_pid = ::getpid();
    r.owner_start = proc_start_time(::getpid()).value_or(0);
    make_private_dir(pp.record_dir(id));
    write_record(pp, r);
    if (::rename(tmp.c_str(), pp.slot(id).c_str()) != 0) throw_errno("cannot move " + tmp.string());
    return r;
  }
  throw Error("could not find a free id for a pool slot", "check the sessions folder " + pp.root.string());
}

// Boots one slot's VM to its guest agent and marks it ready. On failure the
// slot goes, and what went wrong (with the console's last lines) is returned.
std::optional<std::string> boot_slot(const PoolPaths& pp, SlotRecord rec, VmDriver& driver) {
  try {
    Meta m;
    m.id = rec.id;
    m.image = rec.shape.image;
    m.cpus = rec.shape.cpus;
    m.memory_mib = rec.shape.memory_mib;
    m.net = rec.shape.net;
    L::Image image = driver.load_image(m.image);
    L::QemuInfo qemu = driver.qemu(image.arch);
    Progress quiet(true);
    L::AccelChoice accel = driver.choose_accel(L::accel_request_from(std::nullopt), image, qemu, quiet);
    HostFacts host = host_facts(driver, image, qemu, accel);
    SessionPaths sp = pp.slot_paths(rec.id);
    driver.prepare_share(sp.dir);
    L::PortReservation port = driver.reserve_port(std::nullopt, 0);
    port.set_owner("agent-vm pool slot " + rec.id);
    L::VmSpec spec = session_vm_spec(m, sp, host, port.port);
    rec.ssh_port = port.port;
    rec.accel = L::to_string(accel.accel);
    L::BootOptions bo;
    bo.timeout = kDefaultBootTimeout;
    // Ready once the agent waits for its claim, sshd listening (an image from
    // before starts both at the claim: ready at its guest agent).
    bo.wait_until = image.pooled_agent ? L::ReadyCheck::Agent : L::ReadyCheck::GuestAgent;
    bo.pooled = true;
    rec.agent_waits = image.pooled_agent;
    bo.qemu_log = sp.qemu_log();
    bo.on_started = [&](const L::VmHandle& vm) {
      rec.pid = vm.pid;
      rec.start_time = vm.start_time;
      write_record(pp, rec);
    };
    driver.boot(spec, port, bo);
    // Removed while it booted: not ours to mark any more.
    if (!fs::exists(pp.slot(rec.id))) return "pool VM " + rec.id + " was removed while it booted";
    rec.state = SlotRecord::State::Ready;
    write_record(pp, rec);
    return std::nullopt;
  } catch (const std::exception& e) {
    std::string why = "pool VM " + rec.id + " failed to boot: " + e.what();
    if (const auto* be = dynamic_cast<const L::BootError*>(&e); be && !be->console_tail().empty())
      why += "\nlast console lines:\n" + be->console_tail();
    try {
      if (rec.pid) stop_slot_vm(driver, rec, pp.slot(rec.id));
      if (fs::exists(pp.slot(rec.id))) {
        FileLock l = pool_lock(pp);
        discard_slot(pp, rec.id, driver);
      }
    } catch (const std::exception&) {
    }
    return why;
  }
}

unsigned ensure_pool(const SessionStore& store, const std::optional<PoolConfig>& set, Progress& progress,
                     VmDriver& driver) {
  PoolPaths pp(store.root());
  std::vector<SlotRecord> to_boot;
  {
    FileLock l = pool_lock(pp);
    prepare_dirs(pp);
    sweep_taken(pp, driver, progress);
    if (set) write_file_atomic(pp.config(), format_pool_config(*set), 0600);
    PoolConfig cfg = load_pool_config(store);
    std::vector<SlotView> views;
    for (const auto& [id, seen] : see_slots(pp, driver, false)) {
      // Not asked here: a recorded-ready slot with a live QEMU counts as ready.
      views.push_back(view_of(id, seen));
    }
    PoolPlan plan = plan_pool(views, cfg);
    for (const auto& id : plan.remove) {
      progress.stage("removing pool slot " + id);
      discard_slot(pp, id, driver);
      progress.done("removed");
    }
    for (unsigned i = 0; i < plan.boot; ++i) to_boot.push_back(new_slot(pp, store, cfg.shape));
  }
  if (to_boot.empty()) return 0;
  progress.stage("booting " + std::to_string(to_boot.size()) + " pool VM" + (to_boot.size() == 1 ? "" : "s"));
  std::vector<std::future<std::optional<std::string>>> boots;
  for (const auto& r : to_boot)
    boots.push_back(std::async(std::launch::async, [&pp, r, &driver] { return boot_slot(pp, r, driver); }));
  std::vector<std::string> failures;
  for (auto& b : boots)
    if (auto why = b.get()) failures.push_back(std::move(*why));
  progress.done(failures.empty() ? "ready" : std::to_string(failures.size()) + " failed");
  for (const auto& why : failures) progress.warn(why);
  return static_cast<unsigned>(failures.size());
}

}  // namespace

PoolConfig load_pool_config(const SessionStore& store) {
  PoolPaths pp(store.root());
  try {
    auto text = read_file_if_exists(pp.config());
    if (!text) return {};
    return parse_pool_config(*text);
  } catch (const std::exception&) {
    return {};
  }
}

std::vector<SlotStatus> pool_status(const SessionStore& store, VmDriver& driver) {
  PoolPaths pp(store.root());
  std::vector<SlotStatus> out;
  for (const auto& [id, seen] : see_slots(pp, driver, true)) {
    SlotStatus s;
    s.id = id;
    s.record = seen.record;
    s.health = classify_slot(seen);
    if (seen.qemu_alive && seen.record && seen.record->pid)
      s.memory = platform::process_memory(static_cast<pid_t>(*seen.record->pid));
    out.push_back(std::move(s));
  }
  return out;
}

unsigned resize_pool(const SessionStore& store, const PoolConfig& config, Progress& progress, VmDriver& driver) {
  return ensure_pool(store, config, progress, driver);
}

unsigned refill_pool(const SessionStore& store, Progress& progress, VmDriver& driver) {
  if (!fs::exists(PoolPaths(store.root()).config())) return 0;
  return ensure_pool(store, std::nullopt, progress, driver);
}

void start_refill(const SessionStore& store) {
  PoolPaths pp(store.root());
  Fd log(::open(pp.refill_log().c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
  SpawnOptions so;
  so.detach = true;
  so.new_session = true;
  so.stdout_fd = log ? log.get() : -1;
  so.stderr_fd = log ? log.get() : -1;
  so.env = {"AGENT_VM_SESSIONS=" + store.root().string()};
  spawn_detached({self_exe().string(), "pool", "--refill"}, so);
}

// ---- TakenSlot ---------------------------------------------------------------

TakenSlot::TakenSlot(PoolPaths pp, SlotRecord rec, VmDriver& driver)
    : pp_(std::move(pp)), rec_(std::move(rec)), driver_(&driver), dir_(pp_.taken(rec_.id)) {}

TakenSlot::TakenSlot(TakenSlot&& o) noexcept
    : pp_(std::move(o.pp_)), rec_(std::move(o.rec_)), driver_(o.driver_), dir_(std::move(o.dir_)),
      released_(o.released_) {
  o.released_ = true;
}

TakenSlot::~TakenSlot() {
  if (released_) return;
  stop_vm();
  try {
    if (dir_ == pp_.taken(rec_.id)) {
      // A resume's files never stay in a folder about to go.
      if (!rec_.resuming.empty()) hand_back(dir_, SessionStore(pp_.root).dir(rec_.resuming));
      remove_tree(dir_);
    }
    remove_tree(pp_.record_dir(rec_.id));
  } catch (...) {
  }
}

L::VmHandle TakenSlot::handle() const { return slot_handle(rec_, dir_); }

void TakenSlot::stop_vm() noexcept { stop_slot_vm(*driver_, rec_, dir_); }

void TakenSlot::release() noexcept {
  released_ = true;
  try {
    remove_tree(pp_.record_dir(rec_.id));
  } catch (...) {
  }
}

void recover_takes(const SessionStore& store, VmDriver& driver, Progress& progress) {
  PoolPaths pp(store.root());
  if (!fs::exists(pp.dir())) return;
  FileLock l = pool_lock(pp);
  sweep_taken(pp, driver, progress);
}

std::optional<TakenSlot> take_slot(const SessionStore& store, const PoolShape& want, VmDriver& driver,
                                   Progress& progress, std::string_view resuming) {
  PoolPaths pp(store.root());
  if (!fs::exists(pp.dir())) return std::nullopt;
  FileLock l = pool_lock(pp);
  sweep_taken(pp, driver, progress);
  // From the records and processes alone first (cheap); then only the slot
  // chosen is asked, and the next one when it does not answer.
  std::vector<SlotView> views;
  for (const auto& [id, s] : see_slots(pp, driver, false)) {
    SlotView v = view_of(id, s);
    // A crashed, killed or stale slot is removed and never handed out.
    if (v.health == SlotHealth::Dead) {
      discard_slot(pp, id, driver);
      continue;
    }
    views.push_back(v);
  }
  while (auto id = choose_slot(views, want)) {
    SlotSeen s = see_slot(pp, *id, driver, true);
    SlotHealth h = classify_slot(s);
    if (h == SlotHealth::Ready) {
      if (::rename(pp.slot(*id).c_str(), pp.taken(*id).c_str()) != 0)
        throw_errno("cannot take pool slot " + pp.slot(*id).string());
      // Ours until the claim: a spawn or resume killed before it leaves a
      // take that the next one sweeps (a resume's naming its session, before
      // any of its files moves).
      SlotRecord rec = *s.record;
      rec.state = SlotRecord::State::Taken;
      rec.owner_pid = ::getpid();
      rec.owner_start = proc_start_time(::getpid()).value_or(0);
      rec.resuming = std::string(resuming);
      TakenSlot t(pp, rec, driver);
      write_record(pp, rec);
      return t;
    }
    if (h == SlotHealth::Dead) {
      progress.warn("pool VM " + *id + (s.qmp_status.empty() ? " has no QEMU any more" : " is " + s.qmp_status) +
                    "; removed");
      discard_slot(pp, *id, driver);
    } else {
      progress.warn("pool VM " + *id + " did not answer within " + std::to_string(kAskTimeout.count() / 1000) +
                    " s; passed over");
    }
    for (auto& v : views)
      if (v.id == *id) v.health = h;
  }
  return std::nullopt;
}

}  // namespace avm::sessions
