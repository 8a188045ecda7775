// The session lifecycle with a fake VM driver: real session folders, real
// clones (libgit2 from a local repository), real keys and locks; no QEMU.
#include "sessions/lifecycle.h"

#include <catch2/catch.hpp>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>

#include "helpers.h"
#include "sessions/handover.h"
#include "sessions/pool.h"
#include "sessions/vm_driver.h"
#include "util/error.h"
#include "util/file.h"
#include "util/flock.h"
#include "util/progress.h"
#include "util/temp_dir.h"

using namespace avm::sessions;
namespace L = avm::launcher;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// A VM the fake "runs": alive until stopped or killed by the test.
struct FakeVm {
  pid_t pid = 0;
  bool alive = false;
  L::VmObservation seen;  // what observe() answers while alive
};

class FakeDriver final : public VmDriver {
 public:
  enum class Boot { Ok, PortTaken, Fails };

  avm::TempDir tmp{"avm-fake-driver"};
  bool image_missing = false;
  bool accel_refused = false;        // KVM asked for and unusable, say
  std::set<std::uint16_t> taken;     // ports someone else holds
  std::deque<Boot> boots;            // outcomes of the next boots (default: Ok)
  std::vector<L::VmSpec> booted;     // every spec QEMU was started with
  L::StopMethod stop_method = L::StopMethod::GuestPoweroff;
  std::vector<std::vector<std::string>> execs;
  std::vector<bool> pauses;  // every set_paused, in order
  int clock_steps = 0;
  bool clock_error = false;  // the guest agent does not answer after cont

  FakeVm& vm(const std::string& id) {
    std::lock_guard g(mu_);
    return vms_.at(vm_name(id));
  }

  L::Image load_image(const std::string& name) override {
    if (image_missing)
      throw avm::Error("image '" + name + "' is not installed", "run 'agent-vm image build'");
    L::Image i;
    i.name = name;
    i.dir = tmp.path() / "image";
    i.kernel = i.dir / "vmlinuz";
    i.initrd = i.dir / "initrd.img";
    i.rootfs = i.dir / "root.squashfs";
    i.cmdline = "console=ttyS0";
    return i;
  }
  L::QemuInfo qemu(L::GuestArch) override {
    L::QemuInfo q;
    q.path = "/usr/bin/qemu-system-x86_64";
    q.version = "7.2.0";
    q.sandbox = true;
    return q;
  }
  L::AccelChoice choose_accel(L::AccelRequest, const L::Image&, const L::QemuInfo&, avm::Progress&) override {
    if (accel_refused) throw avm::Error("KVM was requested but /dev/kvm is missing", "use --accel tcg");
    return {L::Accel::Tcg, "TCG as requested", false, false};
  }
  std::optional<unsigned long> tsc_khz() override { return 2000000; }
  L::PortReservation reserve_port(std::optional<std::uint16_t> exact, std::uint16_t preferred) override {
    std::lock_guard g(mu_);
    std::uint16_t port = 0;
    if (exact) {
      if (taken.count(*exact)) throw avm::Error("port " + std::to_string(*exact) + " is in use", "pick another");
      port = *exact;
    } else if (preferred && !taken.count(preferred)) {
      port = preferred;
    } else {
      for (port = 40000; taken.count(port); ++port) {
      }
    }
    return {port, avm::FileLock::acquire(tmp.path() / ("port-" + std::to_string(port) + ".lock"), 1s)};
  }
  void prepare_share(const fs::path&) override {}

  L::BootResult boot(const L::VmSpec& spec, L::PortReservation& port, const L::BootOptions& opts) override {
    Boot outcome = Boot::Ok;
    {
      std::lock_guard g(mu_);
      booted.push_back(spec);
      if (!boots.empty()) {
        outcome = boots.front();
        boots.pop_front();
      }
    }
    L::VmHandle h;
    h.name = spec.name;
    h.pid = next_pid_++;
    h.start_time = 1000 + static_cast<unsigned long long>(h.pid);
    h.qmp_socket = spec.qmp_socket;
    h.console_log = spec.console_log;
    h.ssh_port = port.port;
    if (opts.on_started) opts.on_started(h);  // QEMU runs
    if (outcome == Boot::PortTaken) {
      std::lock_guard g(mu_);
      taken.insert(port.port);
      throw L::BootError("QEMU could not forward port " + std::to_string(port.port), "", "", true);
    }
    if (outcome == Boot::Fails)
      throw L::BootError("the guest did not become ready within 300s", "", "Kernel panic - not syncing", false);
    std::lock_guard g(mu_);
    FakeVm& v = vms_[spec.name];
    v.pid = h.pid;
    v.alive = true;
    v.seen.process = L::VmObservation::Process::Running;
    v.seen.qmp_status = "running";
    v.seen.guest = L::VmObservation::Guest::Up;
    v.seen.agent = L::VmObservation::Agent::Running;
    return {h, {}};
  }
  L::BootResult await_ready(const L::VmHandle& h, const L::BootOptions&) override { return {h, {}}; }
  bool alive(const L::VmHandle& h) override {
    std::lock_guard g(mu_);
    auto it = vms_.find(h.name);
    return it != vms_.end() && it->second.alive && it->second.pid == h.pid;
  }
  L::VmObservation observe(const L::VmHandle& h, const L::ObserveOptions& opts) override {
    std::lock_guard g(mu_);
    auto it = vms_.find(h.name);
    if (it == vms_.end() || !it->second.alive) return {};
    L::VmObservation o = it->second.seen;
    if (!opts.guest) {
      o.guest = L::VmObservation::Guest::Unknown;
      o.agent = L::VmObservation::Agent::Unknown;
    }
    return o;
  }
  L::StopReport stop(const L::VmHandle& h, const L::StopPolicy& policy, const L::ProgressFn&) override {
    std::lock_guard g(mu_);
    vms_.at(h.name).alive = false;
    L::StopMethod m = policy.force ? L::StopMethod::Quit : stop_method;
    return {m, std::string("stopped by ") + L::to_string(m), "power button", 1200ms};
  }
  std::string set_paused(const L::VmHandle& h, bool paused) override {
    std::lock_guard g(mu_);
    FakeVm& v = vms_.at(h.name);
    v.seen.qmp_status = paused ? "paused" : "running";
    pauses.push_back(paused);
    return v.seen.qmp_status;
  }
  std::chrono::nanoseconds step_guest_clock(const L::VmHandle&, std::chrono::milliseconds) override {
    std::lock_guard g(mu_);
    if (clock_error) throw avm::Error("the guest agent did not answer within 10s", "");
    ++clock_steps;
    return -std::chrono::seconds(30);
  }
  L::GuestExecResult exec(const L::VmHandle&, const std::vector<std::string>& argv, std::chrono::milliseconds,
                          std::string_view) override {
    std::lock_guard g(mu_);
    execs.push_back(argv);
    return {0, std::nullopt, "out", ""};
  }
  std::vector<pid_t> find_vm_processes(const std::string& name) override {
    std::lock_guard g(mu_);
    auto it = vms_.find(name);
    if (it == vms_.end() || !it->second.alive) return {};
    return {it->second.pid};
  }

 private:
  std::mutex mu_;
  std::map<std::string, FakeVm> vms_;
  pid_t next_pid_ = 4242;
};

// One origin for every case: making it is the slowest part of a case.
const avm::test::TestRepo& origin() {
  static const avm::test::TestRepo repo;
  return repo;
}

struct World {
  const avm::test::TestRepo& origin = ::origin();
  avm::TempDir tmp{"avm-lifecycle"};
  SessionStore store{tmp.path() / "sessions"};
  FakeDriver driver;
  avm::Progress progress{true};

  SpawnRequest request(const std::string& id) {
    SpawnRequest r;
    r.repo = origin.path.string();
    r.prompt = "fix it";
    r.agent_cmd = "true";  // no API key needed
    r.id = id;
    return r;
  }
  StartResult spawn(const std::string& id) { return avm::sessions::spawn(store, request(id), progress, driver); }
  Meta meta(const std::string& id) { return store.load(id); }
  SessionStatus status(const std::string& id) { return avm::sessions::status(store, driver, id); }
  StopResult stop(const std::string& id) { return avm::sessions::stop(store, id, L::StopPolicy{}, progress, driver); }
  StartResult resume(const std::string& id) { return avm::sessions::resume(store, id, StartOptions{}, progress, driver); }
  // Nothing of session `id` is left: no folder, no lock file, no dot-folder.
  bool nothing_left_of(const std::string& id) {
    if (fs::exists(store.dir(id)) || fs::exists(store.lock_path(id))) return false;
    if (!fs::exists(store.root())) return true;
    for (const auto& e : fs::directory_iterator(store.root()))
      if (e.path().filename().string().find(id) != std::string::npos) return false;
    return true;
  }
};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const avm::Error& e) {
    return std::string(e.what()) + " | " + e.hint();
  }
  return "no error";
}

}  // namespace

TEST_CASE("spawn clones, boots the session's spec and records one open run", "[lifecycle]") {
  World w;
  StartResult r = w.spawn("s1");
  CHECK(r.id == "s1");
  CHECK(r.ready);
  CHECK(r.accel == "tcg");
  Meta m = w.meta("s1");
  CHECK(m.intent == Intent::Running);
  CHECK(m.commit == w.origin.c3);
  CHECK(m.qemu_pid.has_value());
  CHECK(m.ssh_port == r.ssh_port);
  REQUIRE(m.history.size() == 1);
  CHECK_FALSE(m.history[0].stopped);
  // The spec is the session's.
  REQUIRE(w.driver.booted.size() == 1);
  const L::VmSpec& spec = w.driver.booted[0];
  CHECK(spec.name == "agent-vm-s1");
  CHECK(spec.share_dir == w.store.dir("s1"));
  CHECK(spec.ssh_port == r.ssh_port);
  CHECK(spec.console_log == w.store.paths("s1").console_log());
  CHECK(spec.net == L::NetMode::Restricted);
  CHECK(spec.sandbox_allow_spawn);
  CHECK(spec.tsc_khz == 2000000ul);
  CHECK(fs::exists(w.store.paths("s1").repo() / "README"));
  CHECK(w.status("s1").state == SessionState::Running);
}

TEST_CASE("a port taken as QEMU starts is retried on another, and both runs are recorded", "[lifecycle]") {
  World w;
  w.driver.boots = {FakeDriver::Boot::PortTaken, FakeDriver::Boot::Ok};
  StartResult r = w.spawn("p1");
  REQUIRE(w.driver.booted.size() == 2);
  CHECK(w.driver.booted[0].ssh_port != w.driver.booted[1].ssh_port);
  CHECK(r.ssh_port == w.driver.booted[1].ssh_port);
  Meta m = w.meta("p1");
  REQUIRE(m.history.size() == 2);
  CHECK(m.history[0].how == StopHow::BootFailed);
  CHECK(m.history[0].detail.find("could not forward port") != std::string::npos);
  CHECK_FALSE(m.history[1].stopped);
  CHECK(m.intent == Intent::Running);
}

TEST_CASE("a --port taken at boot is not retried: the session is kept, marked failed", "[lifecycle]") {
  World w;
  w.driver.boots = {FakeDriver::Boot::PortTaken};
  SpawnRequest req = w.request("p2");
  req.start.port = 41000;
  CHECK(error_of([&] { avm::sessions::spawn(w.store, req, w.progress, w.driver); }).find("could not forward port 41000") !=
        std::string::npos);
  CHECK(w.driver.booted.size() == 1);
  Meta m = w.meta("p2");
  CHECK(m.intent == Intent::Failed);
  REQUIRE(m.history.size() == 1);
  CHECK(m.history[0].how == StopHow::BootFailed);
}

TEST_CASE("a boot failure keeps the session, marked failed with the reason", "[lifecycle]") {
  World w;
  w.driver.boots = {FakeDriver::Boot::Fails};
  std::string e = error_of([&] { w.spawn("f1"); });
  CHECK(e.find("did not become ready") != std::string::npos);
  CHECK(e.find("Kernel panic") != std::string::npos);  // the console's last words
  CHECK(e.find("agent-resume f1") != std::string::npos);
  Meta m = w.meta("f1");
  CHECK(m.intent == Intent::Failed);
  CHECK(m.intent_reason.find("did not become ready") != std::string::npos);
  CHECK_FALSE(m.qemu_pid.has_value());
  REQUIRE(m.history.size() == 1);
  CHECK(m.history[0].stopped.has_value());
  CHECK(m.history[0].how == StopHow::BootFailed);
  SessionStatus s = w.status("f1");
  CHECK(s.state == SessionState::Failed);
  CHECK(s.status == "failed");
  CHECK(s.detail.find("did not become ready") != std::string::npos);
  // Resume retries on the same folder.
  w.resume("f1");
  CHECK(w.meta("f1").intent == Intent::Running);
  CHECK(w.meta("f1").history.size() == 2);
}

TEST_CASE("a spawn refused before QEMU starts leaves no folder and no lock", "[lifecycle]") {
  World w;
  SECTION("bad URL") {
    SpawnRequest req = w.request("b1");
    req.repo = "ftp://example.invalid/repo";
    CHECK(error_of([&] { avm::sessions::spawn(w.store, req, w.progress, w.driver); }) != "no error");
  }
  SECTION("clone failure") {
    SpawnRequest req = w.request("b1");
    req.repo = (w.tmp.path() / "no-such-repo").string();
    CHECK(error_of([&] { avm::sessions::spawn(w.store, req, w.progress, w.driver); }) != "no error");
  }
  SECTION("image missing") {
    w.driver.image_missing = true;
    CHECK(error_of([&] { w.spawn("b1"); }).find("agent-vm image build") != std::string::npos);
  }
  SECTION("--port taken") {
    w.driver.taken.insert(41001);
    SpawnRequest req = w.request("b1");
    req.start.port = 41001;
    CHECK(error_of([&] { avm::sessions::spawn(w.store, req, w.progress, w.driver); }).find("in use") != std::string::npos);
  }
  SECTION("memory too small") {
    SpawnRequest req = w.request("b1");
    req.start.memory_mib = 16;
    CHECK(error_of([&] { avm::sessions::spawn(w.store, req, w.progress, w.driver); }).find("too small") != std::string::npos);
  }
  SECTION("accelerator refused after the clone") {
    w.driver.accel_refused = true;
    CHECK(error_of([&] { w.spawn("b1"); }).find("KVM was requested") != std::string::npos);
  }
  CHECK(w.driver.booted.empty());
  CHECK(w.nothing_left_of("b1"));
  CHECK(w.store.list().empty());
}

TEST_CASE("stop records how the VM went, for every way it can go", "[lifecycle]") {
  auto [method, how] = GENERATE(table<L::StopMethod, StopHow>({
      {L::StopMethod::GuestPoweroff, StopHow::GuestPoweroff},
      {L::StopMethod::Quit, StopHow::Quit},
      {L::StopMethod::Sigterm, StopHow::Sigterm},
      {L::StopMethod::Sigkill, StopHow::Sigkill},
  }));
  World w;
  w.driver.stop_method = method;
  w.spawn("t1");
  StopResult r = w.stop("t1");
  CHECK(r.was_running);
  CHECK(r.method == L::to_string(method));
  Meta m = w.meta("t1");
  CHECK(m.intent == Intent::Stopped);
  CHECK_FALSE(m.qemu_pid.has_value());
  REQUIRE(m.history.size() == 1);
  CHECK(m.history[0].how == how);
  CHECK(m.history[0].detail.find(std::string("stopped by ") + L::to_string(method)) != std::string::npos);
  SessionStatus s = w.status("t1");
  CHECK(s.state == SessionState::Stopped);
  CHECK(s.detail == "last stop: " + std::string(to_string(how)));
  // A second stop finds nothing running and changes nothing.
  CHECK_FALSE(w.stop("t1").was_running);
  CHECK(w.meta("t1").history == m.history);
}

TEST_CASE("a crash is noticed by list, closed by stop, and resume starts a new run", "[lifecycle]") {
  World w;
  w.spawn("c1");
  w.driver.vm("c1").alive = false;  // QEMU died
  SessionStatus s = w.status("c1");
  CHECK(s.state == SessionState::Crashed);
  CHECK(s.status == "crashed");
  CHECK(s.detail == "QEMU exited without being asked");
  CHECK_FALSE(s.pid.has_value());
  // Listing records nothing.
  CHECK_FALSE(w.meta("c1").history[0].stopped);

  SECTION("stop closes the run") {
    CHECK_FALSE(w.stop("c1").was_running);
    Meta m = w.meta("c1");
    CHECK(m.history[0].how == StopHow::Crash);
    CHECK(m.intent == Intent::Stopped);
    CHECK(w.status("c1").state == SessionState::Stopped);
  }
  SECTION("resume closes the run and starts another") {
    w.resume("c1");
    Meta m = w.meta("c1");
    REQUIRE(m.history.size() == 2);
    CHECK(m.history[0].how == StopHow::Crash);
    CHECK(m.history[0].detail == "QEMU exited without being asked");
    CHECK_FALSE(m.history[1].stopped);
    CHECK(m.intent == Intent::Running);
    CHECK(w.status("c1").state == SessionState::Running);
  }
}

TEST_CASE("a guest that powered off by itself shows as stopped, with that detail", "[lifecycle]") {
  World w;
  w.spawn("g1");
  w.driver.vm("g1").alive = false;
  avm::write_file_atomic(w.store.paths("g1").console_log(), "[  12.0] reboot: Power down\n");
  SessionStatus s = w.status("g1");
  CHECK(s.state == SessionState::Stopped);
  CHECK(s.detail == "the guest powered off by itself");
  w.resume("g1");
  Meta m = w.meta("g1");
  REQUIRE(m.history.size() == 2);
  CHECK(m.history[0].how == StopHow::GuestPoweroff);
  CHECK(m.history[0].detail == "the guest powered off by itself");
  // The console of the boot before stays readable.
  CHECK(avm::read_file(w.store.paths("g1").previous_console_log()).find("Power down") != std::string::npos);
}

TEST_CASE("list shows what the VM answers: paused, unresponsive, frozen, agent exited, guest silent",
          "[lifecycle]") {
  World w;
  w.spawn("o1");
  FakeVm& vm = w.driver.vm("o1");
  SECTION("paused") {
    vm.seen.qmp_status = "paused";
    SessionStatus s = w.status("o1");
    CHECK(s.state == SessionState::Paused);
    CHECK(s.status == "paused");
  }
  SECTION("the monitor does not answer") {
    vm.seen.qmp_status.clear();
    vm.seen.monitor_error = "timed out after 3s";
    vm.seen.guest = L::VmObservation::Guest::Unknown;
    SessionStatus s = w.status("o1");
    CHECK(s.state == SessionState::Unresponsive);
    CHECK(s.detail == "the monitor does not answer: timed out after 3s");
    CHECK(detail_is_news(s.state));
  }
  SECTION("QEMU frozen by SIGSTOP") {
    vm.seen.process = L::VmObservation::Process::Frozen;
    SessionStatus s = w.status("o1");
    CHECK(s.status == "unresponsive");
    CHECK(s.detail == "QEMU is stopped (SIGSTOP)");
  }
  SECTION("the agent exited") {
    vm.seen.agent = L::VmObservation::Agent::Exited;
    vm.seen.agent_detail = "exit code 1";
    SessionStatus s = w.status("o1");
    CHECK(s.state == SessionState::Running);
    CHECK(s.agent == "exited");
    CHECK(s.detail == "exit code 1");
  }
  SECTION("the guest agent does not answer") {
    vm.seen.guest = L::VmObservation::Guest::NoAnswer;
    vm.seen.agent = L::VmObservation::Agent::Unknown;
    SessionStatus s = w.status("o1");
    CHECK(s.guest == "no answer");
    CHECK(s.agent == "-");
  }
  SECTION("another status is shown as QEMU says it") {
    vm.seen.qmp_status = "guest-panicked";
    SessionStatus s = w.status("o1");
    CHECK(s.state == SessionState::Other);
    CHECK(s.status == "guest-panicked");
  }
  SECTION("without asking the guest") {
    auto all = avm::sessions::list(w.store, w.driver, 3000ms, false);
    REQUIRE(all.size() == 1);
    CHECK(all[0].status == "running");
    CHECK(all[0].guest == "-");
    CHECK(all[0].agent == "-");
  }
}

TEST_CASE("list shows corrupt and unfinished sessions next to good ones", "[lifecycle]") {
  World w;
  w.spawn("a1");
  w.spawn("a2");
  w.spawn("a3");
  avm::write_file_atomic(w.store.paths("a2").meta(), "{not json");
  {
    SessionLock lock = w.store.lock("a3");
    Meta m = w.meta("a3");
    m.intent = Intent::Creating;
    m.history.clear();
    m.qemu_pid.reset();
    w.store.save(lock, m);
  }
  auto all = avm::sessions::list(w.store, w.driver);
  REQUIRE(all.size() == 3);
  CHECK(all[0].state == SessionState::Running);
  CHECK(all[0].guest == "up");
  CHECK(all[0].agent == "running");
  CHECK(all[1].state == SessionState::Corrupt);
  CHECK_FALSE(all[1].detail.empty());
  CHECK(all[2].state == SessionState::Failed);
  CHECK(all[2].detail == "spawn did not finish");
}

TEST_CASE("exec runs in the VM as the agent, or as root", "[lifecycle]") {
  World w;
  w.spawn("e1");
  ExecRequest req;
  req.argv = {"ls", "-l"};
  ExecResult r = avm::sessions::exec(w.store, "e1", req, w.driver);
  CHECK(r.exit_code == 0);
  CHECK(r.out == "out");
  REQUIRE(w.driver.execs.size() == 1);
  // As the agent user, the command last.
  const auto& argv = w.driver.execs[0];
  CHECK(argv.front() == "runuser");
  REQUIRE(argv.size() >= 3);
  CHECK(argv[argv.size() - 2] == "ls");
  CHECK(argv.back() == "-l");
  req.as_root = true;
  avm::sessions::exec(w.store, "e1", req, w.driver);
  CHECK(w.driver.execs[1] == req.argv);
  // Not running: refused with the fix.
  w.stop("e1");
  CHECK(error_of([&] { avm::sessions::exec(w.store, "e1", req, w.driver); }).find("agent-resume e1") != std::string::npos);
}

TEST_CASE("resume refuses a running session, and remove refuses it unless forced", "[lifecycle]") {
  World w;
  w.spawn("r1");
  CHECK(error_of([&] { w.resume("r1"); }).find("already running") != std::string::npos);
  CHECK(error_of([&] { avm::sessions::remove(w.store, "r1", false, w.progress, w.driver); }).find("--force") !=
        std::string::npos);
  avm::sessions::remove(w.store, "r1", true, w.progress, w.driver);
  CHECK(w.driver.find_vm_processes("agent-vm-r1").empty());
  CHECK(w.nothing_left_of("r1"));
}

TEST_CASE("pause and unpause: stop and cont once each, the clock stepped after cont", "[lifecycle]") {
  World w;
  w.spawn("p1");
  PauseResult r = avm::sessions::pause(w.store, "p1", true, w.driver);
  CHECK(r.changed);
  CHECK(r.status == "paused");
  CHECK_FALSE(r.clock_offset);
  CHECK(w.status("p1").state == SessionState::Paused);
  // Once more: nothing to do, nothing sent.
  r = avm::sessions::pause(w.store, "p1", true, w.driver);
  CHECK_FALSE(r.changed);
  CHECK(r.message == "p1 is already paused; nothing to do");
  CHECK(w.driver.pauses == std::vector<bool>{true});
  // exec meets a paused guest: refused at once, naming the fix.
  ExecRequest req;
  req.argv = {"true"};
  CHECK(error_of([&] { avm::sessions::exec(w.store, "p1", req, w.driver); }) ==
        "session p1 is paused | continue it with 'agent-vm unpause p1'");
  CHECK(w.driver.execs.empty());
  r = avm::sessions::pause(w.store, "p1", false, w.driver);
  CHECK(r.changed);
  CHECK(r.status == "running");
  REQUIRE(r.clock_offset);
  CHECK(*r.clock_offset == -std::chrono::seconds(30));
  CHECK(w.driver.clock_steps == 1);
  r = avm::sessions::pause(w.store, "p1", false, w.driver);
  CHECK_FALSE(r.changed);
  CHECK(r.message == "p1 is running, not paused; nothing to do");
  CHECK(w.driver.pauses == std::vector<bool>{true, false});
  CHECK(avm::sessions::exec(w.store, "p1", req, w.driver).exit_code == 0);
}

TEST_CASE("unpause succeeds when the clock cannot be stepped, and says why", "[lifecycle]") {
  World w;
  w.spawn("p2");
  avm::sessions::pause(w.store, "p2", true, w.driver);
  w.driver.clock_error = true;
  PauseResult r = avm::sessions::pause(w.store, "p2", false, w.driver);
  CHECK(r.changed);
  CHECK(r.status == "running");
  CHECK_FALSE(r.clock_offset);
  CHECK(r.clock_error == "the guest agent did not answer within 10s");
}

TEST_CASE("pause refuses a stopped session and names agent-resume", "[lifecycle]") {
  World w;
  w.spawn("p3");
  w.stop("p3");
  CHECK(error_of([&] { avm::sessions::pause(w.store, "p3", true, w.driver); }) ==
        "session p3 is not running (stopped) | start it with 'agent-resume p3'");
  CHECK(error_of([&] { avm::sessions::pause(w.store, "p3", false, w.driver); }) ==
        "session p3 is not running (stopped) | start it with 'agent-resume p3'");
  CHECK(w.driver.pauses.empty());
}

namespace {

// A pool of one ready VM of the default shape; its slot id.
std::string warm_slot(World& w) {
  PoolConfig c;
  c.size = 1;
  REQUIRE(resize_pool(w.store, c, w.progress, w.driver) == 0);
  std::vector<std::string> ids;
  for (const auto& e : fs::directory_iterator(w.store.root() / ".pool"))
    if (e.path().filename().string()[0] != '.') ids.push_back(e.path().filename().string());
  REQUIRE(ids.size() == 1);
  return ids[0];
}

std::string key_of(World& w, const std::string& id) {
  return avm::read_file(w.store.paths(id).ssh() / "id_ed25519");
}

}  // namespace

TEST_CASE("resume takes a warm VM from the pool: same id, files and keys, the VM found under the slot's name",
          "[lifecycle][pool]") {
  World w;
  w.spawn("s3ss10");
  w.stop("s3ss10");
  std::string key = key_of(w, "s3ss10");
  std::string slot = warm_slot(w);
  pid_t slot_pid = *parse_slot(avm::read_file(w.store.root() / ".pool" / ".host" / slot / "slot.json")).pid;
  size_t boots = w.driver.booted.size();

  StartResult r = w.resume("s3ss10");
  CHECK(r.id == "s3ss10");
  REQUIRE_FALSE(r.phases.empty());
  CHECK(r.phases[0].first == "pool");
  CHECK(w.driver.booted.size() == boots);  // no cold boot
  CHECK(w.driver.execs.back() == std::vector<std::string>{"/usr/libexec/agent-vm/claim"});
  Meta m = w.meta("s3ss10");
  CHECK(m.qemu_pid == slot_pid);
  CHECK(m.vm_id == slot);
  CHECK(m.intent == Intent::Running);
  REQUIRE(m.history.size() == 2);
  CHECK_FALSE(m.history[1].stopped);
  CHECK(key_of(w, "s3ss10") == key);
  CHECK(fs::exists(w.store.paths("s3ss10").repo() / "README"));
  CHECK_FALSE(fs::exists(w.store.dir("s3ss10") / std::string(kPoolSlotMarker)));
  // The slot's helpers were pointed at its id's host-only folder: the session's now.
  CHECK(fs::read_symlink(w.store.host_dir(slot)) == fs::path("s3ss10"));
  CHECK_FALSE(fs::exists(w.store.root() / ".pool" / slot));
  CHECK_FALSE(fs::exists(w.store.root() / ".pool" / (".taken-" + slot)));
  CHECK_FALSE(fs::exists(w.store.root() / ".pool" / ".host" / slot));
  CHECK(w.status("s3ss10").state == SessionState::Running);
  for (const auto& s : list(w.store, w.driver))
    CHECK(s.id == "s3ss10");

  StopResult st = w.stop("s3ss10");
  CHECK(st.was_running);
  CHECK_FALSE(w.driver.alive(vm_handle(m, w.store.paths("s3ss10"))));
  CHECK_FALSE(fs::exists(fs::symlink_status(w.store.host_dir(slot))));
  CHECK_FALSE(w.meta("s3ss10").vm_id);
  CHECK(w.status("s3ss10").state == SessionState::Stopped);
}

TEST_CASE("a resume with --port or --accel boots cold, beside a waiting pool", "[lifecycle][pool]") {
  World w;
  w.spawn("s3ss10");
  w.stop("s3ss10");
  warm_slot(w);
  StartOptions o;
  o.port = 45000;
  size_t boots = w.driver.booted.size();
  avm::sessions::resume(w.store, "s3ss10", o, w.progress, w.driver);
  REQUIRE(w.driver.booted.size() == boots + 1);
  CHECK(w.driver.booted.back().name == "agent-vm-s3ss10");
  CHECK_FALSE(w.meta("s3ss10").vm_id);
}

TEST_CASE("a resume that died while moving the session into a warm VM is put back by the next resume",
          "[lifecycle][pool]") {
  World w;
  w.spawn("s3ss10");
  w.stop("s3ss10");
  std::string key = key_of(w, "s3ss10");
  fs::path s = w.store.dir("s3ss10");
  avm::write_file_atomic(s / "opencode" / "conversation", "so far", 0600);
  std::string slot = warm_slot(w);
  PoolPaths pp(w.store.root());
  SlotRecord rec = parse_slot(avm::read_file(pp.record(slot)));
  // The dead resume's take: renamed out, recorded as its (an owner long
  // gone), its host-only link made and half of the files moved.
  fs::rename(pp.slot(slot), pp.taken(slot));
  rec.state = SlotRecord::State::Taken;
  rec.resuming = "s3ss10";
  rec.owner_pid = 0;
  avm::write_file_atomic(pp.record(slot), format_slot(rec), 0600);
  w.store.link_host_dir("s3ss10", slot);
  auto plan = plan_hand_over(folder_entries(s), false);
  REQUIRE(plan.size() > 3);
  for (size_t i = 0; i < 3; ++i) {
    fs::remove_all(pp.taken(slot) / plan[i].to);
    fs::rename(s / plan[i].from, pp.taken(slot) / plan[i].to);
  }
  size_t boots = w.driver.booted.size();

  StartResult r = w.resume("s3ss10");
  // The take is gone with its VM; nothing was left in the pool to take.
  CHECK_FALSE(fs::exists(pp.taken(slot)));
  CHECK_FALSE(fs::exists(pp.record_dir(slot)));
  CHECK_FALSE(fs::exists(fs::symlink_status(w.store.host_dir(slot))));
  CHECK(w.driver.booted.size() == boots + 1);
  CHECK(r.phases[0].first != "pool");
  // Every file of the session is back, the keys unchanged.
  CHECK(key_of(w, "s3ss10") == key);
  CHECK(avm::read_file(s / "opencode" / "conversation") == "so far");
  CHECK(fs::exists(w.store.paths("s3ss10").repo() / "README"));
  CHECK(w.status("s3ss10").state == SessionState::Running);
}

TEST_CASE("rm --force finds a warm-resumed session's VM by the slot's name even with meta.json broken",
          "[lifecycle][pool]") {
  World w;
  w.spawn("s3ss10");
  w.stop("s3ss10");
  std::string slot = warm_slot(w);
  w.resume("s3ss10");
  Meta m = w.meta("s3ss10");
  REQUIRE(m.vm_id == slot);
  L::VmHandle h = vm_handle(m, w.store.paths("s3ss10"));
  avm::write_file_atomic(w.store.paths("s3ss10").meta(), "{broken", 0600);
  CHECK(error_of([&] { avm::sessions::remove(w.store, "s3ss10", false, w.progress, w.driver); })
            .find("is running") != std::string::npos);
  avm::sessions::remove(w.store, "s3ss10", true, w.progress, w.driver);
  CHECK_FALSE(w.driver.alive(h));
  CHECK(w.nothing_left_of("s3ss10"));
  CHECK_FALSE(fs::exists(fs::symlink_status(w.store.host_dir(slot))));
}
