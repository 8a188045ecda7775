#include "launcher/vm.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json/serialize.hpp>
#include <cerrno>
#include <cstring>

#include "launcher/qemu_process.h"
#include "qmp/errors.h"
#include "qmp/qga_client.h"
#include "qmp/qmp_client.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/file.h"
#include "util/process.h"
#include "util/strings.h"

namespace avm::launcher {

namespace fs = std::filesystem;
using namespace std::chrono;
using Clock = steady_clock;

namespace {

milliseconds left(Clock::time_point deadline) {
  auto d = duration_cast<milliseconds>(deadline - Clock::now());
  return d.count() > 0 ? d : milliseconds(0);
}

std::string file_tail(const fs::path& p, size_t lines) {
  try {
    auto text = read_file_if_exists(p);
    return text ? tail_lines(*text, lines) : std::string();
  } catch (const Error&) {
    return {};
  }
}

// The agent's state is read from files through the guest agent: a file read
// costs a few round trips, where starting a process under TCG costs hundreds
// of milliseconds. The service's cgroup says "populated 1" while any process
// of the agent's tmux runs; agent-start leaves kAgentSession once tmux has
// made the session, so both together mean the session exists.
constexpr const char* kAgentCgroupEvents = "/sys/fs/cgroup/system.slice/agent-vm-agent.service/cgroup.events";
constexpr const char* kAgentSession = "/run/agent-vm/agent/session";
// A warm-pool VM's agent-run leaves this while it waits for its claim.
constexpr const char* kAgentWaiting = "/run/agent-vm/agent/waiting";
// Images from before kAgentSession have only the guest's own script, asked
// when the cgroup has been populated for a while without the file.
constexpr const char* kAgentStatus = "/usr/libexec/agent-vm/agent-status";
constexpr milliseconds kAgentScriptAfter{5000};
// sshd writes its pid file once it listens. Until the guest's setup has put
// up its network (just before sshd starts), a banner probe's connection gets
// no answer at all: QEMU's user network holds it and retries the guest on its
// own timer, so a probe sent then saw sshd's banner only when its whole
// budget ran out, ~2 s after sshd listened in a cold boot under TCG. So the
// probe waits for this file (read through the guest agent), and probes
// regardless once kBlindSshProbeAfter has passed without it (an sshd that
// writes none, or no guest agent).
constexpr const char* kSshdPidFile = "/run/sshd.pid";
constexpr milliseconds kBlindSshProbeAfter{5000};

}  // namespace

fs::path observe_socket_for(const fs::path& qmp_socket) {
  return qmp_socket.parent_path() / "qmp-observe.sock";
}

fs::path agent_port_log_for(const fs::path& qmp_socket) { return qmp_socket.parent_path() / "agent-port.log"; }

BootError::BootError(const std::string& what, std::string hint, std::string console_tail,
                     bool port_taken)
    : Error(what, std::move(hint)), console_tail_(std::move(console_tail)), port_taken_(port_taken) {}

bool ssh_banner_ok(std::uint16_t port, milliseconds timeout, std::string* detail) {
  auto deadline = Clock::now() + timeout;
  auto fail = [&](std::string why) {
    if (detail) *detail = std::move(why);
    return false;
  };
  Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!s) return fail("socket: " + std::string(std::strerror(errno)));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno != EINPROGRESS)
    return fail("connect to 127.0.0.1:" + std::to_string(port) + ": " + std::strerror(errno));
  std::string got;
  for (;;) {
    pollfd p{s.get(), POLLIN, 0};
    int ms = static_cast<int>(left(deadline).count());
    if (ms <= 0) return fail(got.empty() ? "no SSH banner yet" : "partial banner");
    int r = ::poll(&p, 1, ms);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    char buf[256];
    ssize_t n = ::read(s.get(), buf, sizeof buf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n < 0) return fail(std::string("read: ") + std::strerror(errno));
    if (n == 0) return fail("the forward closed the connection (sshd not listening yet)");
    got.append(buf, static_cast<size_t>(n));
    if (got.find('\n') != std::string::npos) {
      if (got.starts_with("SSH-2.0-")) return true;
      return fail("not an SSH banner: " + trim(got.substr(0, 40)));
    }
  }
}

namespace {

// Ends a QEMU that failed to become ready: quit if the monitor works, else
// SIGKILL. Never signals a pid that is not this VM's.
void put_down(const VmHandle& vm, std::optional<qmp::QmpClient>& qmp) {
  if (qmp) {
    try {
      qmp->quit(milliseconds(2000));
    } catch (const std::exception&) {
    }
    qmp.reset();
    if (wait_for_exit(vm.pid, milliseconds(5000))) return;
  }
  if (is_vm_process(vm.pid, vm.name, vm.start_time)) {
    ::kill(vm.pid, SIGKILL);
    wait_for_exit(vm.pid, milliseconds(5000));
  }
}

}  // namespace

BootResult boot_vm(const VmSpec& spec, PortReservation& port, const BootOptions& opts) {
  // Sockets left by an earlier run would be mistaken for this one's.
  for (const fs::path& sock : {spec.qmp_socket, spec.qga_socket, spec.observe_socket})
    if (!sock.empty()) ::unlink(sock.c_str());
  fs::path qemu_log = opts.qemu_log.empty() ? spec.console_log.parent_path() / "qemu.log" : opts.qemu_log;
  ::truncate(qemu_log.c_str(), 0);

  std::vector<std::string> argv = qemu_argv(spec);
  DetachedProcess p = start_detached(argv, qemu_log, {port.lock.fd()});
  VmHandle vm{spec.name, p.pid, p.start_time, spec.qmp_socket, spec.observe_socket,
              spec.qga_socket, spec.console_log, spec.ssh_port};
  if (opts.on_started) opts.on_started(vm);
  BootOptions o = opts;
  o.qemu_log = qemu_log;
  return await_vm(vm, o);
}

BootResult await_vm(const VmHandle& vm, const BootOptions& opts) {
  fs::path qemu_log = opts.qemu_log.empty() ? vm.console_log.parent_path() / "qemu.log" : opts.qemu_log;

  auto report = [&](const std::string& stage, const std::string& detail) {
    if (opts.progress) opts.progress(stage, detail);
  };

  auto start = Clock::now();
  ReadinessMachine rm(opts.timeout, opts.retry, opts.wait_until, opts.first);
  std::optional<qmp::QmpClient> qmp;
  std::optional<qmp::QgaClient> qga;
  // A try of one check; the agent check runs a process in the guest, which
  // under TCG, with the agent starting beside it, can take seconds.
  auto step_budget = [](ReadyCheck c) { return milliseconds(c == ReadyCheck::Agent ? 15000 : 3000); };
  std::optional<Clock::time_point> agent_populated;  // since when the agent's cgroup has processes
  std::optional<Clock::time_point> ssh_since;        // since when the sshd check has run

  for (;;) {
    if (opts.cancel && opts.cancel->load()) {
      put_down(vm, qmp);
      throw BootError("the VM was stopped while booting (interrupted)", "", file_tail(vm.console_log, 20),
                      false);
    }
    auto elapsed = duration_cast<milliseconds>(Clock::now() - start);
    if (!proc_alive(vm.pid)) rm.on_exited(trim(file_tail(qemu_log, 3)), elapsed);
    ReadyAction a = rm.next(elapsed);
    if (a.kind == ReadyAction::Kind::Ready) {
      BootResult r{vm, rm.passed()};
      return r;
    }
    if (a.kind == ReadyAction::Kind::Fail) {
      put_down(vm, qmp);
      std::string qlog = trim(file_tail(qemu_log, 5));
      bool port_taken = qlog.find("host forwarding rule") != std::string::npos;
      std::string what = "the VM did not become ready: " + a.detail;
      if (!qlog.empty() && a.detail.find(qlog) == std::string::npos) what += "\nQEMU said: " + qlog;
      std::string hint = port_taken
                             ? "port " + std::to_string(vm.ssh_port) + " was taken; pass another --port"
                             : "see the console log: " + vm.console_log.string();
      throw BootError(what, hint, file_tail(vm.console_log, 20), port_taken);
    }
    if (a.kind == ReadyAction::Kind::Wait) {
      // Waiting is also watching: QEMU's exit ends it early.
      wait_for_exit(vm.pid, a.wait);
      continue;
    }
    auto now_elapsed = [&] { return duration_cast<milliseconds>(Clock::now() - start); };
    auto budget = std::min(step_budget(a.check), opts.timeout - std::min(opts.timeout, elapsed));
    report("booting", std::string("waiting for the ") + describe(a.check));
    bool ok = false;
    bool fatal = false;
    std::string detail;
    try {
      switch (a.check) {
        case ReadyCheck::Qmp:
          qmp.emplace(qmp::QmpClient::connect(vm.qmp_socket, budget));
          ok = true;
          break;
        case ReadyCheck::Share: {
          if (!qmp) qmp.emplace(qmp::QmpClient::connect(vm.qmp_socket, budget));
          // The share was declared on the command line; confirm QEMU built it
          // with the right tag before calling the VM ready.
          boost::json::object args{{"path", "/machine/peripheral/share"}, {"property", "mount_tag"}};
          auto tag = qmp->execute("qom-get", args, budget);
          ok = tag.is_string() && tag.as_string() == "session";
          if (!ok) {
            fatal = true;
            detail = "the 9p device's mount_tag is " + boost::json::serialize(tag) + ", expected \"session\"";
          }
          break;
        }
        case ReadyCheck::GuestAgent:
          if (!qga) qga.emplace(qmp::QgaClient::connect(vm.qga_socket, budget));
          qga->sync(budget);
          ok = true;
          break;
        case ReadyCheck::Ssh: {
          if (!ssh_since) ssh_since = Clock::now();
          bool listening = true;
          if (Clock::now() - *ssh_since < kBlindSshProbeAfter) {
            try {
              if (!qga) qga.emplace(qmp::QgaClient::connect(vm.qga_socket, budget));
              listening = qga->read_file(kSshdPidFile, budget).has_value();
            } catch (const Error&) {
              qga.reset();  // asked again at the agent check; probe as without it
            }
          }
          if (!listening) {
            detail = "sshd is not listening yet (no " + std::string(kSshdPidFile) + ")";
            break;
          }
          ok = ssh_banner_ok(vm.ssh_port, budget, &detail);
          break;
        }
        case ReadyCheck::Agent: {
          if (!qga) qga.emplace(qmp::QgaClient::connect(vm.qga_socket, budget));
          auto events = qga->read_file(kAgentCgroupEvents, budget);
          if (!events || events->find("populated 1") == std::string::npos) {
            agent_populated.reset();
            detail = "agent-vm-agent.service is not running yet";
            break;
          }
          if (!agent_populated) agent_populated = Clock::now();
          if (qga->read_file(opts.pooled ? kAgentWaiting : kAgentSession, budget)) {
            ok = true;
            break;
          }
          detail = opts.pooled ? "the pooled agent does not wait for its claim yet"
                               : "agent-vm-agent.service is starting tmux";
          if (opts.pooled || Clock::now() - *agent_populated < kAgentScriptAfter) break;
          auto r = qga->exec({kAgentStatus}, budget);
          ok = r.exit_code == 0;
          if (!ok) detail = trim(r.out + r.err);
          break;
        }
      }
    } catch (const qmp::CommandError& e) {
      detail = e.what();
      fatal = a.check == ReadyCheck::Share;
    } catch (const Error& e) {
      detail = e.what();
      // A broken guest-agent connection is reopened on the next try.
      if (a.check == ReadyCheck::GuestAgent || a.check == ReadyCheck::Agent) qga.reset();
      if (a.check == ReadyCheck::Qmp) qmp.reset();
    }
    rm.on_result(a.check, ok, detail, now_elapsed(), fatal);
    if (ok) report("booting", std::string(describe(a.check)) + " ready");
  }
}

bool console_shows_poweroff(const fs::path& console_log) {
  std::string tail = file_tail(console_log, 5);
  return tail.find("reboot: Power down") != std::string::npos;
}

void observe_ports(VmObservation& o, const std::vector<ChardevOpen>& chardevs, bool agent_port_used) {
  using G = VmObservation::Guest;
  using A = VmObservation::Agent;
  for (const auto& c : chardevs) {
    if (c.label == "qga") o.guest = c.frontend_open ? G::Up : G::Closed;
    if (c.label == "agent") {
      if (c.frontend_open) {
        o.agent = A::Running;
      } else if (agent_port_used) {
        o.agent = A::Exited;
        o.agent_detail = "the agent has ended (it closed its port " + std::string(kAgentPortName) + ")";
      }
    }
  }
}

VmObservation observe_vm(const VmHandle& vm, const ObserveOptions& opts) {
  VmObservation o;
  auto deadline = Clock::now() + opts.timeout;
  if (!is_vm_process(vm.pid, vm.name, vm.start_time)) {
    o.process = VmObservation::Process::Exited;
    return o;
  }
  o.process = proc_state(vm.pid) == ProcState::Stopped ? VmObservation::Process::Frozen
                                                       : VmObservation::Process::Running;
  fs::path mon = vm.observe_socket.empty() ? vm.qmp_socket : vm.observe_socket;
  std::vector<ChardevOpen> ports;
  try {
    // Both questions travel with the capabilities, in one write: each VM's
    // monitor is woken once, not three times (agent-list asks them all).
    std::vector<std::string> ahead{"query-status"};
    if (!opts.guest) ahead.push_back("query-chardev");
    auto q = qmp::QmpClient::connect(mon, left(deadline), ahead);
    o.qmp_status = q.query_status(left(deadline)).status_name;
    if (o.qmp_status == "running" && !opts.guest)
      for (const auto& c : q.query_chardev(left(deadline))) ports.push_back({c.label, c.frontend_open});
  } catch (const std::exception& e) {
    if (o.qmp_status.empty()) {
      o.monitor_error = e.what();
      return o;
    }
    o.agent_detail = e.what();  // query-status answered: the run state stands
  }
  if (o.qmp_status != "running") return o;
  if (!opts.guest) {
    // The host side of the agent's port: written by the guest, so only its
    // size is read, and a link there is not followed.
    std::error_code ec;
    fs::path log = agent_port_log_for(vm.qmp_socket);
    bool used = fs::symlink_status(log, ec).type() == fs::file_type::regular && fs::file_size(log, ec) > 0 && !ec;
    if (!ports.empty()) observe_ports(o, ports, used);
    return o;
  }
  try {
    auto g = qmp::QgaClient::connect(vm.qga_socket, left(deadline));
    g.sync(std::min(left(deadline), milliseconds(1500)));
    o.guest = VmObservation::Guest::Up;
    auto events = g.read_file(kAgentCgroupEvents, left(deadline));
    bool populated = events && events->find("populated 1") != std::string::npos;
    o.agent = populated ? VmObservation::Agent::Running : VmObservation::Agent::Exited;
    if (!populated) o.agent_detail = "the agent's tmux session has ended (agent-vm-agent.service is not running)";
  } catch (const std::exception& e) {
    if (o.guest != VmObservation::Guest::Up) o.guest = VmObservation::Guest::NoAnswer;
    o.agent_detail = e.what();
  }
  return o;
}

StopReport stop_vm(const VmHandle& vm, const StopPolicy& policy, const ProgressFn& progress) {
  auto start = Clock::now();
  auto report = [&](const std::string& s) {
    if (progress) progress("stopping", s);
  };
  std::optional<qmp::QmpClient> qmp;
  std::string qmp_error;
  try {
    qmp.emplace(qmp::QmpClient::connect(vm.qmp_socket, milliseconds(3000)));
  } catch (const std::exception& e) {
    qmp_error = e.what();
  }
  qmp::EventCursor cursor = qmp ? qmp->cursor() : 0;

  struct Waited {
    enum { Shutdown, Exited, Timeout } kind;
    bool guest = false;
    std::string reason;
  };
  auto wait_next = [&](Clock::time_point deadline) -> Waited {
    if (qmp) {
      try {
        auto ev = qmp->wait_event("SHUTDOWN", cursor, left(deadline));
        if (ev) {
          cursor = ev->seq;
          auto s = qmp::ShutdownEvent::from(*ev);
          return {Waited::Shutdown, s.guest, s.reason};
        }
        if (!proc_alive(vm.pid)) return {Waited::Exited};
        return {Waited::Timeout};
      } catch (const qmp::ClosedError&) {
        qmp.reset();  // QEMU is exiting: the process tells the rest
      } catch (const Error&) {
        qmp.reset();
      }
    }
    if (wait_for_exit(vm.pid, left(deadline))) return {Waited::Exited};
    return {Waited::Timeout};
  };

  // A paused guest cannot see the power button: the machine continues it first.
  bool paused = false;
  if (qmp && !policy.force) {
    try {
      paused = qmp->query_status(milliseconds(3000)).status_name == "paused";
    } catch (const std::exception&) {
      // The button press below meets the same monitor and escalates.
    }
  }
  StopMachine m(policy);
  StopAction a = m.start(paused);
  Clock::time_point deadline = Clock::now();
  for (;;) {
    using K = StopAction::Kind;
    switch (a.kind) {
      case K::Done:
        return {a.method, a.detail, m.trail(), duration_cast<milliseconds>(Clock::now() - start)};
      case K::Fail:
        throw Error("could not stop QEMU (pid " + std::to_string(vm.pid) + "): " + a.detail,
                    "check the process by hand: ps -p " + std::to_string(vm.pid));
      case K::Cont:
        if (!qmp) {
          a = m.on_command_failed(qmp_error.empty() ? "the monitor is gone" : qmp_error);
          continue;
        }
        try {
          report("continuing the paused guest");
          qmp->cont(milliseconds(3000));
          a = m.on_continued();
        } catch (const std::exception& e) {
          qmp.reset();
          qmp_error = e.what();
          a = m.on_command_failed(e.what());
        }
        continue;
      case K::PowerButton:
      case K::Quit: {
        if (!qmp) {
          a = m.on_command_failed(qmp_error.empty() ? "the monitor is gone" : qmp_error);
          continue;
        }
        try {
          if (a.kind == K::PowerButton) {
            report("pressing the power button");
            qmp->system_powerdown(milliseconds(3000));
          } else {
            report("asking QEMU to quit");
            qmp->quit(milliseconds(3000));
          }
        } catch (const qmp::ClosedError&) {
          // Exited under us: the wait below sees it.
          qmp.reset();
        } catch (const std::exception& e) {
          qmp.reset();
          qmp_error = e.what();
          a = m.on_command_failed(e.what());
          continue;
        }
        deadline = Clock::now() + a.wait;
        break;
      }
      case K::Signal:
        // The pid came from a file the guest can write: check it is this VM.
        if (is_vm_process(vm.pid, vm.name, vm.start_time)) {
          report(a.signal == SIGKILL ? "sending SIGKILL" : "sending SIGTERM");
          ::kill(vm.pid, a.signal);
          if (a.signal != SIGKILL) ::kill(vm.pid, SIGCONT);  // a frozen QEMU must run to exit
        }
        deadline = Clock::now() + a.wait;
        break;
      case K::Wait:
        deadline = Clock::now() + a.wait;
        break;
      case K::Continue:
        break;
    }
    Waited w = wait_next(deadline);
    switch (w.kind) {
      case Waited::Shutdown:
        a = m.on_shutdown(w.guest, w.reason);
        break;
      case Waited::Exited:
        a = m.on_exited();
        break;
      case Waited::Timeout:
        a = m.on_wait_expired();
        break;
    }
  }
}

std::string set_vm_paused(const VmHandle& vm, bool paused, milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  auto q = qmp::QmpClient::connect(vm.qmp_socket, left(deadline));
  if (paused)
    q.stop(left(deadline));
  else
    q.cont(left(deadline));
  return q.query_status(left(deadline)).status_name;
}

nanoseconds step_guest_clock(const VmHandle& vm, milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  auto g = qmp::QgaClient::connect(vm.qga_socket, left(deadline));
  g.sync(left(deadline));
  auto host_ns = [] {
    return duration_cast<nanoseconds>(system_clock::now().time_since_epoch()).count();
  };
  // The guest's answer is taken as of the middle of its round trip.
  auto before = host_ns();
  std::int64_t guest = g.get_time(left(deadline));
  auto after = host_ns();
  g.set_time(host_ns(), left(deadline));
  return nanoseconds(guest - (before + (after - before) / 2));
}

GuestExecResult exec_in_vm(const VmHandle& vm, const std::vector<std::string>& argv,
                           milliseconds timeout, std::string_view input) {
  auto q = qmp::QgaClient::connect(vm.qga_socket, milliseconds(5000));
  q.sync(milliseconds(10000));
  auto r = q.exec(argv, timeout, {}, input);
  return {r.exit_code, r.signal, std::move(r.out), std::move(r.err)};
}

}  // namespace avm::launcher
