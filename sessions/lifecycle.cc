#include "sessions/lifecycle.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <future>
#include <thread>

#include "launcher/accel.h"
#include "launcher/egress.h"
#include "launcher/gateway.h"
#include "launcher/host.h"
#include "launcher/image.h"
#include "launcher/ports.h"
#include "launcher/vm.h"
#include "launcher/vm_spec.h"
#include "sessions/clone.h"
#include "sessions/env_file.h"
#include "sessions/handover.h"
#include "sessions/journal.h"
#include "sessions/observe.h"
#include "sessions/keys.h"
#include "sessions/pause.h"
#include "sessions/pool.h"
#include "sessions/session_vm.h"
#include "sessions/vm_driver.h"
#include "util/error.h"
#include "util/file.h"
#include "util/paths.h"
#include "util/process.h"
#include "util/progress.h"
#include "util/remove_tree.h"
#include "util/strings.h"
#include "util/timestamp.h"

namespace avm::sessions {

namespace fs = std::filesystem;
namespace L = avm::launcher;
using namespace std::chrono;

const std::vector<std::string>& default_allow_hosts() {
  // What opencode needs to work: the model list. The model's API is reached
  // by the host's model gateway, not through the egress proxy.
  static const std::vector<std::string> hosts = {"models.opencode.ai"};
  return hosts;
}

namespace {

// A run whose end nobody recorded (QEMU died, or the guest powered itself
// off) is closed with what the console says.
void close_run_if_dangling(Meta& m, const SessionPaths& p) {
  if (!has_dangling_run(m)) return;
  close_dangling_run(m, L::console_shows_poweroff(p.console_log()), utc_now_iso8601());
}

StopHow stop_how(L::StopMethod m) {
  switch (m) {
    case L::StopMethod::GuestPoweroff: return StopHow::GuestPoweroff;
    case L::StopMethod::Quit: return StopHow::Quit;
    case L::StopMethod::Sigterm: return StopHow::Sigterm;
    case L::StopMethod::Sigkill: return StopHow::Sigkill;
    case L::StopMethod::Exited: return StopHow::Crash;
  }
  return StopHow::Crash;
}

// Before a boot: the host-only folder exists, gateway.json carries the
// budget asked for and egress.json the allowlist.
void prepare_gateway(const SessionPaths& p, const Meta& meta, const StartOptions& opts) {
  make_private_dir(p.host);
  L::GatewayFiles gf(p.host);
  L::GatewayConfig c;
  if (fs::exists(gf.config())) c = L::load_gateway_config(gf);
  c.session = meta.id;
  if (opts.max_tokens) c.max_tokens = *opts.max_tokens;
  L::save_gateway_config(gf, c);
  L::EgressConfig ec;
  ec.policy.allow = meta.allow_hosts;
  write_file_atomic(p.host / L::kEgressConfigFile, L::render_egress_config(ec), 0600);
}

// The session folder is the guest's share: root in the guest reaches run/
// and ssh/ too, and under security_model=none its symlinks are real on the
// host. Before a start, nothing the host or QEMU writes there by name may
// follow one: a run/ that is not a folder is replaced (it holds nothing that
// lasts), the files in it that are opened by name must be plain files, and
// an ssh/ that is a link is refused (the keys can no longer be trusted).
void check_ssh_folder(const SessionPaths& p) {
  struct stat st {};
  if (::lstat(p.ssh().c_str(), &st) == 0 && !S_ISDIR(st.st_mode))
    throw Error("session folder " + p.dir.string() + " was tampered with: ssh/ is a symlink or not a folder",
                "its keys cannot be trusted; inspect it, put the ssh/ folder back, or remove the session "
                "with agent-rm");
}

void reclaim_host_paths(const SessionPaths& p) {
  check_ssh_folder(p);
  auto type_of = [](const fs::path& f) -> std::optional<mode_t> {
    struct stat st {};
    if (::lstat(f.c_str(), &st) != 0) return std::nullopt;
    return st.st_mode & S_IFMT;
  };
  if (auto t = type_of(p.run()); t && *t != S_IFDIR) remove_tree(p.run());
  make_private_dir(p.run());
  for (const fs::path& f : {p.qemu_pid(), p.qemu_log(), p.console_log(), p.previous_console_log()})
    if (auto t = type_of(f); t && *t != S_IFREG) remove_tree(f);
}

// Boots the session's VM under its held lock and records the run.
// `began` is when the command started its work and `before` what it already
// accounted for (the clone), so the phases add up to the whole.
StartResult start_vm(const SessionStore& store, const SessionLock& lock, Meta& meta,
                     const StartOptions& opts, Progress& progress, VmDriver& driver,
                     steady_clock::time_point began,
                     std::vector<std::pair<std::string, milliseconds>> before = {}) {
  SessionPaths p = store.paths(meta.id);
  if (opts.image) meta.image = *opts.image;
  if (opts.cpus) meta.cpus = *opts.cpus;
  if (opts.memory_mib) meta.memory_mib = *opts.memory_mib;
  L::check_cpus(meta.cpus);
  L::check_memory_mib(meta.memory_mib);
  L::Image image = driver.load_image(meta.image);
  L::QemuInfo qemu = driver.qemu(image.arch);

  // The accelerator: say plainly what was chosen and why.
  L::AccelChoice accel = driver.choose_accel(L::accel_request_from(opts.accel), image, qemu, progress);
  progress.note("accelerator: " + accel.reason);

  HostFacts host = host_facts(driver, image, qemu, accel);
  // A spec QEMU would refuse is refused now, before the run is recorded.
  (void)L::qemu_argv(session_vm_spec(meta, p, host, meta.ssh_port ? meta.ssh_port : L::kFirstPort));

  reclaim_host_paths(p);
  // The previous boot's console stays readable as console.log.1.
  std::error_code ec;
  if (fs::exists(p.console_log(), ec)) fs::rename(p.console_log(), p.previous_console_log(), ec);

  driver.prepare_share(p.dir);
  prepare_gateway(p, meta, opts);

  int attempts = opts.port ? 1 : 3;
  for (int attempt = 1;; ++attempt) {
    L::PortReservation port = driver.reserve_port(opts.port, meta.ssh_port);
    port.set_owner("agent-vm session " + meta.id);
    pin_host_key(p.ssh(), port.port);
    L::VmSpec spec = session_vm_spec(meta, p, host, port.port);

    meta.ssh_port = port.port;
    meta.accelerator = L::to_string(accel.accel);
    meta.intent = Intent::Running;
    meta.intent_reason.clear();
    begin_run(meta, utc_now_iso8601());
    meta.vm_id.reset();
    store.save(lock, meta);

    L::BootOptions bo;
    bo.timeout = opts.boot_timeout;
    bo.wait_until = opts.wait ? L::ReadyCheck::Agent : L::ReadyCheck::Share;
    bo.qemu_log = p.qemu_log();
    steady_clock::time_point qemu_started{};
    bo.cancel = opts.cancel;
    bo.on_started = [&](const L::VmHandle& vm) {
      qemu_started = steady_clock::now();
      meta.qemu_pid = vm.pid;
      meta.qemu_start_time = vm.start_time;
      store.save(lock, meta);
    };
    bo.progress = [&](const std::string&, const std::string& detail) { progress.update(detail); };
    progress.stage(opts.wait ? "booting (" + std::string(L::to_string(accel.accel)) + ")"
                             : "starting QEMU");
    try {
      L::BootResult r = driver.boot(spec, port, bo);
      auto ready = steady_clock::now();
      progress.done(opts.wait ? "ready" : "running");
      StartResult out;
      out.id = meta.id;
      out.ssh_port = port.port;
      out.accel = L::to_string(accel.accel);
      out.accel_reason = accel.reason;
      out.ready = opts.wait;
      for (const auto& t : r.timings) out.timings.emplace_back(L::to_string(t.check), t.at);
      milliseconds accounted{0};
      for (const auto& ph : before) accounted += ph.second;
      out.phases = std::move(before);
      out.phases.emplace_back("setup", duration_cast<milliseconds>(qemu_started - began) - accounted);
      out.phases.emplace_back("boot", duration_cast<milliseconds>(ready - qemu_started));
      return out;
    } catch (const L::BootError& e) {
      progress.done("failed");
      end_run(meta, StopHow::BootFailed, e.what(), utc_now_iso8601());
      if (e.port_taken() && attempt < attempts) {
        progress.note("port " + std::to_string(port.port) + " was taken as QEMU started; trying another");
        store.save(lock, meta);
        continue;
      }
      meta.intent = Intent::Failed;
      meta.intent_reason = e.what();
      store.save(lock, meta);
      std::string msg = e.what();
      if (!e.console_tail().empty()) msg += "\nlast console lines:\n" + e.console_tail();
      throw Error(msg, "see 'agent-vm logs " + meta.id + "'; retry with 'agent-resume " + meta.id +
                           "', or remove it with 'agent-rm " + meta.id + "'");
    }
  }
}

// The run on a warm VM, recorded before the session's files reach its
// share: a taker that dies after the move never leaves a VM that no
// meta.json names.
void begin_warm_run(Meta& meta, const SlotRecord& rec) {
  meta.ssh_port = rec.ssh_port;
  meta.accelerator = rec.accel;
  meta.intent = Intent::Running;
  meta.intent_reason.clear();
  begin_run(meta, utc_now_iso8601());
  meta.qemu_pid = rec.pid;
  meta.qemu_start_time = rec.start_time;
  if (rec.id != meta.id)
    meta.vm_id = rec.id;
  else
    meta.vm_id.reset();
}

// The link that gave a VM started under another id the session's host-only
// folder goes with that VM.
void forget_vm_id(const SessionStore& store, Meta& meta) {
  if (!meta.vm_id) return;
  store.unlink_host_dir(meta.id, *meta.vm_id);
  meta.vm_id.reset();
}

// Starts the pool's replacement boot when it goes out of scope, whether the
// claim succeeded or not: after the claim, so that boot does not take the
// host's CPUs from the claimed guest while it starts the agent. Declared
// before the TakenSlot, so a slot given up is cleaned away first.
class RefillAfterClaim {
 public:
  RefillAfterClaim(const SessionStore& store, Progress& progress) : store_(store), progress_(progress) {}
  RefillAfterClaim(const RefillAfterClaim&) = delete;
  RefillAfterClaim& operator=(const RefillAfterClaim&) = delete;
  ~RefillAfterClaim() {
    try {
      start_refill(store_);
    } catch (const std::exception& e) {
      try {
        progress_.warn(std::string("the pool is not refilled: ") + e.what());
      } catch (...) {
      }
    }
  }

 private:
  const SessionStore& store_;
  Progress& progress_;
};

// A warm-pool VM whose share is now the session's folder root/<id> (spawn:
// NewSession::commit_into; resume: SessionStore::move_into), with its run
// recorded (begin_warm_run): the host-only folder its helpers point at gets
// the session's settings, the host key is pinned, the marker goes, the guest
// is told (libexec/agent-vm/claim through the guest agent) and the wait goes
// on from sshd, as a boot's would. A failure stops that VM and boots a new one.
StartResult claim_warm(const SessionStore& store, const SessionLock& lock, TakenSlot& slot, Meta& meta,
                       const StartOptions& opts, Progress& progress, VmDriver& driver,
                       steady_clock::time_point began, steady_clock::time_point setup_began,
                       std::vector<std::pair<std::string, milliseconds>> before) {
  SessionPaths p = store.paths(meta.id);
  const SlotRecord& rec = slot.record();
  try {
    driver.prepare_share(p.dir);
    prepare_gateway(p, meta, opts);
    pin_host_key(p.ssh(), rec.ssh_port);
    std::error_code ec;
    fs::remove(p.dir / std::string(kPoolSlotMarker), ec);
    if (ec) throw Error("cannot remove the pool-slot marker: " + ec.message());
    auto claimed = steady_clock::now();
    progress.stage("claiming the warm VM");
    L::GuestExecResult r = driver.exec(slot.handle(), {"/usr/libexec/agent-vm/claim"}, opts.boot_timeout, "");
    if (r.exit_code != 0 || r.signal)
      throw Error("the guest's claim script failed: " + trim(r.err + r.out));
    L::BootResult br;
    if (opts.wait) {
      L::BootOptions bo;
      bo.timeout = opts.boot_timeout;
      // sshd has listened since the pooled boot, whose readiness saw its
      // banner, and the claim checked that it still runs and wrote the
      // session's host key, which it reads at each connection: only the
      // agent is waited for, unless the claim restarted sshd or the image's
      // sshd starts only at the claim.
      bo.first = claim_wait_from(rec, r.out);
      bo.wait_until = L::ReadyCheck::Agent;
      bo.qemu_log = p.qemu_log();
      bo.cancel = opts.cancel;
      bo.progress = [&](const std::string&, const std::string& detail) { progress.update(detail); };
      br = driver.await_ready(slot.handle(), bo);
    }
    auto ready = steady_clock::now();
    progress.done(opts.wait ? "ready" : "running");
    slot.release();
    StartResult out;
    out.id = meta.id;
    out.ssh_port = rec.ssh_port;
    out.accel = rec.accel;
    out.accel_reason = "the warm VM from the pool runs under " + rec.accel;
    out.ready = opts.wait;
    for (const auto& t : br.timings) out.timings.emplace_back(L::to_string(t.check), t.at);
    out.phases = std::move(before);
    out.phases.emplace_back("setup", duration_cast<milliseconds>(claimed - setup_began));
    out.phases.emplace_back("claim", duration_cast<milliseconds>(ready - claimed));
    return out;
  } catch (const std::exception& e) {
    progress.done("failed");
    progress.warn(std::string("the warm VM failed (") + e.what() + "); booting a new one");
    slot.stop_vm();
    slot.release();
    end_run(meta, StopHow::BootFailed, std::string("warm VM: ") + e.what(), utc_now_iso8601());
    meta.qemu_pid.reset();
    meta.qemu_start_time.reset();
    forget_vm_id(store, meta);
    store.save(lock, meta);
    before.emplace_back("pool-failed", duration_cast<milliseconds>(steady_clock::now() - setup_began));
    return start_vm(store, lock, meta, opts, progress, driver, began, std::move(before));
  }
}

// The pool's shape a session of `meta` (with `opts`' changes) boots in.
PoolShape shape_for(const Meta& meta, const StartOptions& opts) {
  PoolShape want;
  want.image = opts.image.value_or(meta.image);
  want.memory_mib = opts.memory_mib.value_or(meta.memory_mib);
  want.cpus = opts.cpus.value_or(meta.cpus);
  want.net = net_mode(meta.net) == L::NetMode::Restricted ? "restricted" : meta.net;
  return want;
}

// agent-resume on a warm VM from the pool, when one of the session's shape
// waits: the run is recorded, the slot's id linked to the session's
// host-only folder (its helpers were pointed there at the pooled boot), the
// session's files moved into the slot's share, which takes the session
// folder's place (SessionStore::move_into); then the claim, as a spawn's.
// nullopt when no VM was taken, or the move failed (the session's files
// handed back, the VM stopped): the caller boots cold.
std::optional<StartResult> resume_warm(const SessionStore& store, const SessionLock& lock, Meta& meta,
                                       const StartOptions& opts, Progress& progress, VmDriver& driver,
                                       steady_clock::time_point began) {
  auto t0 = steady_clock::now();
  std::optional<RefillAfterClaim> refill;
  std::optional<TakenSlot> slot;
  try {
    if (auto t = take_slot(store, shape_for(meta, opts), driver, progress, meta.id)) slot.emplace(std::move(*t));
  } catch (const std::exception& e) {
    progress.warn(std::string("the warm pool was not used: ") + e.what());
  }
  if (!slot) return std::nullopt;
  refill.emplace(store, progress);  // its replacement boots once this returns
  auto pool_took = duration_cast<milliseconds>(steady_clock::now() - t0);
  auto setup_began = steady_clock::now();
  SessionPaths p = store.paths(meta.id);
  Meta was = meta;
  try {
    if (opts.image) meta.image = *opts.image;
    if (opts.cpus) meta.cpus = *opts.cpus;
    if (opts.memory_mib) meta.memory_mib = *opts.memory_mib;
    begin_warm_run(meta, slot->record());
    store.save(lock, meta);
    store.link_host_dir(meta.id, slot->id());
    store.move_into(lock, slot->dir());
    slot->moved_to(p.dir);
  } catch (const std::exception& e) {
    progress.warn(std::string("the warm VM could not take the session (") + e.what() + "); booting a new one");
    // Nothing of the session stays in a folder about to go.
    try {
      hand_back(slot->dir(), p.dir);
    } catch (const std::exception& e2) {
      progress.warn(std::string("putting the session's files back failed: ") + e2.what());
      throw;
    }
    store.unlink_host_dir(meta.id, slot->id());
    slot.reset();
    meta = was;
    store.save(lock, meta);
    return std::nullopt;
  }
  progress.note("session " + meta.id + " resumes on warm VM " + slot->id() + " from the pool");
  return claim_warm(store, lock, *slot, meta, opts, progress, driver, began, setup_began, {{"pool", pool_took}});
}

}  // namespace

StartResult spawn(const SessionStore& store, const SpawnRequest& req, Progress& progress) {
  return spawn(store, req, progress, default_driver());
}

StartResult spawn(const SessionStore& store, const SpawnRequest& req, Progress& progress, VmDriver& driver) {
  auto began = steady_clock::now();
  // Everything that can be checked is checked before anything is created.
  parse_repo_url(req.repo);
  L::NetMode net = net_mode(req.net);
  std::string image_name = req.start.image.value_or("default");
  driver.load_image(image_name);
  L::accel_request_from(req.start.accel);
  L::check_cpus(req.start.cpus.value_or(kDefaultCpus));
  L::check_memory_mib(req.start.memory_mib.value_or(kDefaultMemoryMib));
  // A --port that is taken now is refused before anything is cloned.
  if (req.start.port) (void)driver.reserve_port(req.start.port, 0);
  EnvSelection env = collect_env(req.env_names);
  const char* key = std::getenv("ANTHROPIC_API_KEY");
  if ((!key || !*key) && !req.agent_cmd)
    throw Error("ANTHROPIC_API_KEY is not set: opencode needs it to reach the model",
                "export ANTHROPIC_API_KEY=... (it stays on the host, in the session's host-only folder, mode "
                "0600; the guest never sees it), or pass --agent-cmd to run another agent");
  L::Upstream upstream = L::parse_upstream(req.upstream.value_or(L::kDefaultUpstream));
  std::vector<std::string> missing;
  for (const auto& n : env.missing)
    if (std::find(req.env_names.begin(), req.env_names.end(), n) != req.env_names.end()) missing.push_back(n);
  if (!missing.empty()) {
    std::string names;
    for (const auto& n : missing) names += (names.empty() ? "" : ", ") + n;
    throw Error("--env names variables that are not set: " + names, "export them first, or drop --env");
  }
  std::vector<std::string> allow;
  if (net == L::NetMode::Restricted) {
    allow = default_allow_hosts();
    for (const auto& h : req.allow_hosts) allow.push_back(L::normalize_allow_entry(h));
  } else if (!req.allow_hosts.empty()) {
    throw Error("--allow-host only applies to --net restricted", "drop --allow-host or use --net restricted");
  }

  // A warm VM of this shape from the pool, when one waits (not for a chosen
  // id, port or accelerator: those are fixed at the pooled boot).
  std::optional<RefillAfterClaim> refill;
  std::optional<TakenSlot> slot;
  milliseconds pool_took{0};
  if (!req.id && !req.start.port && !req.start.accel) {
    auto t0 = steady_clock::now();
    PoolShape want;
    want.image = image_name;
    want.memory_mib = req.start.memory_mib.value_or(kDefaultMemoryMib);
    want.cpus = req.start.cpus.value_or(kDefaultCpus);
    want.net = net == L::NetMode::Restricted ? "restricted" : req.net;
    try {
      if (auto t = take_slot(store, want, driver, progress)) slot.emplace(std::move(*t));
    } catch (const std::exception& e) {
      progress.warn(std::string("the warm pool was not used: ") + e.what());
    }
    pool_took = duration_cast<milliseconds>(steady_clock::now() - t0);
    if (slot) refill.emplace(store, progress);  // its replacement boots in the background, after the claim
  }

  NewSession ns = store.create(slot ? std::optional<std::string>(slot->id()) : req.id);
  SessionPaths p = ns.paths();
  Meta meta;
  meta.id = ns.id();
  meta.repo_url = redact_url(req.repo);
  meta.ref = req.ref;
  meta.created = utc_now_iso8601();
  meta.image = image_name;
  meta.cpus = req.start.cpus.value_or(kDefaultCpus);
  meta.memory_mib = req.start.memory_mib.value_or(kDefaultMemoryMib);
  meta.net = req.net;
  meta.allow_hosts = allow;
  if (req.agent_cmd) meta.agent_command = std::vector<std::string>{"sh", "-c", *req.agent_cmd};
  meta.intent = Intent::Creating;

  generate_session_keys(p.ssh(), "agent-vm session " + meta.id);
  if (!req.prompt.empty()) write_file_atomic(p.prompt(), req.prompt, 0600);
  if (req.agent_cmd) write_file_atomic(p.dir / "agent-cmd", *req.agent_cmd + "\n", 0600);
  // The real key and the gateway's configuration stay in the host-only
  // folder; the guest gets the gateway's URL and a worthless placeholder.
  if (key && *key) write_file_atomic(p.api_key(), std::string(key) + "\n", 0600);
  {
    L::GatewayConfig gc;
    gc.session = meta.id;
    gc.upstream = upstream.url();
    gc.max_tokens = req.start.max_tokens;
    L::save_gateway_config(L::GatewayFiles(p.host), gc);
  }
  EnvVars vars = env.vars;
  vars.emplace_back("ANTHROPIC_BASE_URL", L::kGuestBaseUrl);
  vars.emplace_back("ANTHROPIC_API_KEY", L::kGuestPlaceholderKey);
  if (net == L::NetMode::Restricted) {
    std::string proxy = "http://" + std::string(L::kEgressProxyAddr) + ":" + std::to_string(L::kEgressProxyPort);
    for (const char* k : {"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"}) vars.emplace_back(k, proxy);
  }
  std::string no_proxy = "localhost,127.0.0.1," + std::string(L::kGatewayAddr);
  vars.emplace_back("NO_PROXY", no_proxy);
  vars.emplace_back("no_proxy", no_proxy);
  write_env_file(p.env(), vars);
  ns.save(meta);

  progress.stage("cloning " + meta.repo_url);
  CloneOptions co;
  co.ref = req.ref;
  co.progress = [&](const CloneProgress& cp) { progress.update(describe(cp)); };
  co.cancel = req.start.cancel;
  CloneResult cr;
  auto clone_began = steady_clock::now();
  auto cancelled = [&] { return req.start.cancel && req.start.cancel->load(); };
  try {
    cr = clone_repo(req.repo, p.repo(), co);
  } catch (...) {
    progress.done(cancelled() ? "abandoned" : "failed");
    if (cancelled()) throw Error("the clone was abandoned and nothing was kept", "run agent-spawn again");
    throw;
  }
  auto cloned = duration_cast<milliseconds>(steady_clock::now() - clone_began);
  progress.done(cr.checked_out + " at " + cr.commit.substr(0, 12));
  meta.repo_url = cr.url;
  meta.checked_out = cr.checked_out;
  meta.commit = cr.commit;
  ns.save(meta);
  if (cancelled()) throw Error("the clone was abandoned and nothing was kept", "run agent-spawn again");
  if (slot) {
    auto setup_began = steady_clock::now();
    begin_warm_run(meta, slot->record());
    ns.save(meta);
    SessionLock lock = ns.commit_into(slot->dir());
    slot->moved_to(store.dir(meta.id));
    progress.note("session " + meta.id + " created in " + store.dir(meta.id).string() + " on a warm VM from the pool");
    return claim_warm(store, lock, *slot, meta, req.start, progress, driver, began, setup_began,
                      {{"pool", pool_took}, {"clone", cloned}});
  }
  SessionLock lock = ns.commit();
  progress.note("session " + meta.id + " created in " + store.dir(meta.id).string());
  try {
    return start_vm(store, lock, meta, req.start, progress, driver, began, {{"clone", cloned}});
  } catch (...) {
    // Refused before QEMU started (port taken, KVM asked for but unusable,
    // ...): like a failed clone, that leaves nothing behind. A VM that was
    // started and failed to boot keeps its session, marked failed.
    if (meta.history.empty()) {
      try {
        store.remove(lock);
      } catch (const std::exception&) {
      }
    }
    throw;
  }
}

StartResult resume(const SessionStore& store, const std::string& id_or_prefix, const StartOptions& opts,
                   Progress& progress) {
  return resume(store, id_or_prefix, opts, progress, default_driver());
}

StartResult resume(const SessionStore& store, const std::string& id_or_prefix, const StartOptions& opts,
                   Progress& progress, VmDriver& driver) {
  auto began = steady_clock::now();
  // A resume or spawn that died between taking a warm VM and claiming it is
  // put right first: a resume's session files go back to its folder.
  try {
    recover_takes(store, driver, progress);
  } catch (const std::exception& e) {
    progress.warn(std::string("the warm pool could not be checked: ") + e.what());
  }
  std::string id = store.resolve(id_or_prefix);
  SessionLock lock = store.lock(id);
  Meta meta = store.load(id);
  if (vm_running(driver, meta, store.paths(id)))
    throw Error("session " + id + " is already running (ssh port " + std::to_string(meta.ssh_port) + ")",
                "attach with 'agent-attach " + id + "', or stop it first with 'agent-stop " + id + "'");
  SessionPaths p = store.paths(id);
  close_run_if_dangling(meta, p);
  forget_vm_id(store, meta);
  check_ssh_folder(p);
  // The resumed agent's next instruction; none means none, not the last one.
  if (opts.followup)
    write_file_atomic(p.followup(), *opts.followup, 0600);
  else
    remove_tree(p.followup());
  // A warm VM from the pool, as a spawn takes one (not for a chosen port or
  // accelerator: those are fixed at the pooled boot).
  if (!opts.port && !opts.accel)
    if (auto r = resume_warm(store, lock, meta, opts, progress, driver, began)) return std::move(*r);
  return start_vm(store, lock, meta, opts, progress, driver, began);
}

StopResult stop(const SessionStore& store, const std::string& id_or_prefix, const L::StopPolicy& policy,
                Progress& progress) {
  return stop(store, id_or_prefix, policy, progress, default_driver());
}

StopResult stop(const SessionStore& store, const std::string& id_or_prefix, const L::StopPolicy& policy,
                Progress& progress, VmDriver& driver) {
  std::string id = store.resolve(id_or_prefix);
  SessionLock lock = store.lock(id, policy.timeout + seconds(30));
  Meta meta = store.load(id);
  SessionPaths p = store.paths(id);
  StopResult out;
  out.id = id;
  if (!vm_running(driver, meta, p)) {
    close_run_if_dangling(meta, p);
    if (meta.intent == Intent::Running) meta.intent = Intent::Stopped;
    forget_vm_id(store, meta);
    store.save(lock, meta);
    out.defused = defuse_after_stop(p, meta);
    return out;
  }
  out.was_running = true;
  progress.stage("stopping " + id);
  L::StopReport r = driver.stop(vm_handle(meta, p), policy,
                               [&](const std::string&, const std::string& d) { progress.update(d); });
  progress.done(std::string(L::to_string(r.method)));
  end_run(meta, stop_how(r.method), r.detail + " (" + r.trail + ", " + human_duration_ms(r.took) + ")",
          utc_now_iso8601());
  meta.intent = Intent::Stopped;
  forget_vm_id(store, meta);
  store.save(lock, meta);
  out.method = L::to_string(r.method);
  out.detail = r.detail;
  out.trail = r.trail;
  out.took = r.took;
  out.defused = defuse_after_stop(p, meta);
  return out;
}

void remove(const SessionStore& store, const std::string& id_or_prefix, bool force, Progress& progress) {
  remove(store, id_or_prefix, force, progress, default_driver());
}

void remove(const SessionStore& store, const std::string& id_or_prefix, bool force, Progress& progress,
            VmDriver& driver) {
  std::string id = store.resolve(id_or_prefix);
  SessionLock lock = store.lock(id);
  SessionPaths p = store.paths(id);
  // A corrupt meta.json must not make a session unremovable: find its QEMU
  // by name instead.
  std::optional<Meta> meta;
  try {
    meta = store.load(id);
  } catch (const Error&) {
  }
  std::vector<L::VmHandle> running;
  if (meta && vm_running(driver, *meta, p)) {
    running.push_back(vm_handle(*meta, p));
  } else {
    // Under its own id, or a warm-pool slot's a resume took (linked to the
    // session's host-only folder).
    std::vector<std::string> vm_ids = store.host_links(id);
    vm_ids.insert(vm_ids.begin(), id);
    for (const auto& vid : vm_ids)
      for (pid_t pid : driver.find_vm_processes(vm_name(vid))) {
        L::VmHandle h = meta ? vm_handle(*meta, p) : L::VmHandle{};
        h.name = vm_name(vid);
        h.pid = pid;
        h.start_time = 0;
        h.qmp_socket = p.qmp_socket();
        running.push_back(h);
      }
  }
  if (!running.empty()) {
    if (!force)
      throw Error("session " + id + " is running",
                  "stop it first with 'agent-stop " + id + "', or pass --force to stop and remove it");
    L::StopPolicy forced;
    forced.force = true;
    for (const auto& h : running) {
      progress.stage("stopping " + id);
      auto r = driver.stop(h, forced, {});
      progress.done(L::to_string(r.method));
    }
  }
  store.remove(lock);
}

PauseResult pause(const SessionStore& store, const std::string& id_or_prefix, bool paused) {
  return pause(store, id_or_prefix, paused, default_driver());
}

PauseResult pause(const SessionStore& store, const std::string& id_or_prefix, bool paused, VmDriver& driver) {
  std::string id = store.resolve(id_or_prefix);
  // Under the lock: a stop or resume running now finishes first.
  SessionLock lock = store.lock(id);
  SessionInfo info = load_info(store, id);
  // QEMU alone is asked: a paused guest's agent would not answer.
  SessionStatus now = observe_session(driver, info, milliseconds(3000), false);
  PauseDecision d = decide_pause(paused ? PauseWant::Pause : PauseWant::Unpause, now);
  PauseResult out;
  out.id = id;
  out.status = now.status;
  if (d.kind == PauseDecision::Kind::Refuse) throw Error(d.message, d.hint);
  if (d.kind == PauseDecision::Kind::AlreadyThere) {
    out.message = d.message;
    return out;
  }
  L::VmHandle vm = vm_handle(*info.meta, store.paths(id));
  out.status = driver.set_paused(vm, paused);
  out.changed = true;
  if (!paused) {
    try {
      out.clock_offset = driver.step_guest_clock(vm, kClockStepTimeout);
    } catch (const std::exception& e) {
      out.clock_error = e.what();
    }
  }
  return out;
}

namespace {

Meta load_running(VmDriver& driver, const SessionStore& store, const std::string& id) {
  Meta meta = store.load(id);
  SessionPaths p = store.paths(id);
  if (!vm_running(driver, meta, p))
    throw Error("session " + id + " is not running", "start it with 'agent-resume " + id + "'");
  // A paused guest answers neither the guest agent nor sshd: say so now
  // rather than after their timeouts. A monitor that does not answer here
  // is left to the caller's own deadline.
  L::ObserveOptions oo;
  oo.timeout = milliseconds(2000);
  oo.guest = false;
  if (driver.observe(vm_handle(meta, p), oo).qmp_status == "paused")
    throw Error("session " + id + " is paused", "continue it with 'agent-vm unpause " + id + "'");
  return meta;
}

}  // namespace

ExecResult exec(const SessionStore& store, const std::string& id_or_prefix, const ExecRequest& req) {
  return exec(store, id_or_prefix, req, default_driver());
}

ExecResult exec(const SessionStore& store, const std::string& id_or_prefix, const ExecRequest& req,
                VmDriver& driver) {
  if (req.argv.empty()) throw Error("no command given", "agent-exec ID -- COMMAND [ARGS...]");
  std::string id = store.resolve(id_or_prefix);
  Meta meta = load_running(driver, store, id);
  std::vector<std::string> argv;
  if (req.as_root) {
    argv = req.argv;
  } else {
    // As the agent would run it: its user, its home, its folder, and the
    // variables of the session's env file (HTTPS_PROXY under restricted
    // networking), read literally as agent-run reads them.
    static const char* const kAgentShell = R"(f=/run/agent-vm/agent/env
if [ -r "$f" ]; then
  while IFS= read -r line || [ -n "$line" ]; do
    line=${line%$'\r'}
    case "$line" in ''|'#'*) continue ;; esac
    key=${line%%=*}
    [ "$key" != "$line" ] || continue
    [[ "$key" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
    export "$key=${line#*=}"
  done <"$f"
fi
export XDG_DATA_HOME=/session/opencode
cd /session/repo && exec "$@")";
    argv = {"runuser", "-u", "agent", "--", "env", "HOME=/home/agent", "USER=agent", "LOGNAME=agent",
            "PATH=/usr/local/bin:/usr/bin:/bin", "bash", "-c", kAgentShell, "agent-exec"};
    argv.insert(argv.end(), req.argv.begin(), req.argv.end());
  }
  auto r = driver.exec(vm_handle(meta, store.paths(id)), argv, req.timeout, req.input);
  ExecResult out;
  out.exit_code = r.signal ? 128 + *r.signal : r.exit_code;
  out.out = std::move(r.out);
  out.err = std::move(r.err);
  return out;
}

AttachTarget attach_target(const SessionStore& store, const std::string& id_or_prefix) {
  std::string id = store.resolve(id_or_prefix);
  Meta meta = load_running(default_driver(), store, id);
  KeyFiles k(store.paths(id).ssh());
  return {id, meta.ssh_port, k.client_key, k.host_pub};
}

LogTarget log_target(const SessionStore& store, const std::string& id_or_prefix) {
  std::string id = store.resolve(id_or_prefix);
  LogTarget t;
  t.id = id;
  SessionPaths p = store.paths(id);
  t.console_log = p.console_log();
  t.previous_console_log = p.previous_console_log();
  t.gateway_log = p.gateway_log();
  t.egress_log = p.egress_log();
  t.vm_name = vm_name(id);
  try {
    Meta m = store.load(id);
    t.vm_name = vm_name(vm_id_of(m));
    if (vm_running(default_driver(), m, store.paths(id))) {
      t.pid = *m.qemu_pid;
      t.start_time = m.qemu_start_time.value_or(0);
    }
  } catch (const Error&) {
  }
  return t;
}

}  // namespace avm::sessions
