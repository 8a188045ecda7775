#include "sessions/status.h"

#include <catch2/catch.hpp>

using namespace avm::sessions;
namespace L = avm::launcher;
using P = L::VmObservation::Process;
using G = L::VmObservation::Guest;
using A = L::VmObservation::Agent;

namespace {

Meta running_meta() {
  Meta m;
  m.id = "k3f9ab";
  m.repo_url = "https://example.org/r.git";
  m.ref = "main";
  m.checked_out = "main";
  m.image = "default";
  m.accelerator = "tcg";
  m.net = "restricted";
  m.ssh_port = 2222;
  m.qemu_pid = 99;
  m.intent = Intent::Running;
  m.history = {RunRecord{"t0", std::nullopt, std::nullopt, ""}};
  return m;
}

VmSeen answering(std::string qmp = "running", G guest = G::Up, A agent = A::Running) {
  VmSeen s;
  s.process_alive = true;
  L::VmObservation o;
  o.process = P::Running;
  o.qmp_status = std::move(qmp);
  o.guest = guest;
  o.agent = agent;
  s.observation = o;
  return s;
}

}  // namespace

TEST_CASE("a live VM shows QEMU's status and the guest and agent columns", "[status]") {
  SessionStatus s = classify(running_meta(), answering());
  CHECK(s.state == SessionState::Running);
  CHECK(s.status == "running");
  CHECK(s.qmp_status == "running");
  CHECK(s.guest == "up");
  CHECK(s.agent == "running");
  CHECK(s.pid == 99);
  CHECK(s.ssh_port == 2222);
  CHECK(s.repo == "https://example.org/r.git");
  CHECK(s.ref == "main");
  CHECK(s.detail.empty());

  CHECK(classify(running_meta(), answering("paused")).state == SessionState::Paused);
  s = classify(running_meta(), answering("shutdown"));
  CHECK(s.state == SessionState::Other);
  CHECK(s.status == "shutdown");

  s = classify(running_meta(), answering("running", G::NoAnswer, A::Unknown));
  CHECK(s.guest == "no answer");
  CHECK(s.agent == "-");
  s = classify(running_meta(), answering("running", G::Closed, A::Unknown));
  CHECK(s.guest == "down");

  VmSeen exited = answering("running", G::Up, A::Exited);
  exited.observation->agent_detail = "the agent exited with code 1";
  s = classify(running_meta(), exited);
  CHECK(s.agent == "exited");
  CHECK(s.detail == "the agent exited with code 1");
  CHECK_FALSE(detail_is_news(s.state));
}

TEST_CASE("a VM whose monitor is silent or which is frozen is unresponsive", "[status]") {
  VmSeen silent = answering("");
  silent.observation->monitor_error = "no answer within 3s";
  SessionStatus s = classify(running_meta(), silent);
  CHECK(s.state == SessionState::Unresponsive);
  CHECK(s.status == "unresponsive");
  CHECK(s.detail == "the monitor does not answer: no answer within 3s");
  CHECK(detail_is_news(s.state));

  VmSeen frozen = answering("running");
  frozen.observation->process = P::Frozen;
  s = classify(running_meta(), frozen);
  CHECK(s.state == SessionState::Unresponsive);
  CHECK(s.detail == "QEMU is stopped (SIGSTOP)");
}

TEST_CASE("a VM gone without a recorded end crashed, unless the guest powered off", "[status]") {
  SessionStatus s = classify(running_meta(), VmSeen{});
  CHECK(s.state == SessionState::Crashed);
  CHECK(s.detail == "QEMU exited without being asked");
  CHECK_FALSE(s.pid.has_value());
  CHECK(s.guest == "-");

  VmSeen off;
  off.console_poweroff = true;
  s = classify(running_meta(), off);
  CHECK(s.state == SessionState::Stopped);
  CHECK(s.detail == "the guest powered off by itself");

  // It died while being asked.
  VmSeen died = answering();
  died.observation->process = P::Exited;
  s = classify(running_meta(), died);
  CHECK(s.state == SessionState::Crashed);
  CHECK_FALSE(s.pid.has_value());
}

TEST_CASE("stopped, failed and unfinished sessions say why", "[status]") {
  Meta m = running_meta();
  m.qemu_pid.reset();
  m.intent = Intent::Stopped;
  m.history[0].stopped = "t1";
  m.history[0].how = StopHow::Quit;
  SessionStatus s = classify(m, VmSeen{});
  CHECK(s.state == SessionState::Stopped);
  CHECK(s.detail == "last stop: quit");

  m.intent = Intent::Failed;
  m.intent_reason = "the guest did not become ready";
  s = classify(m, VmSeen{});
  CHECK(s.state == SessionState::Failed);
  CHECK(s.detail == "the guest did not become ready");

  m.intent = Intent::Creating;
  m.history.clear();
  s = classify(m, VmSeen{});
  CHECK(s.state == SessionState::Failed);
  CHECK(s.detail == "spawn did not finish");
}

TEST_CASE("an unreadable meta.json is corrupt, with the reason", "[status]") {
  SessionStatus s = classify_corrupt("k3f9ab", "meta.json is not JSON");
  CHECK(s.state == SessionState::Corrupt);
  CHECK(s.status == "corrupt");
  CHECK(s.detail == "meta.json is not JSON");
  CHECK(s.guest == "-");
  CHECK(s.agent == "-");
  CHECK(detail_is_news(s.state));
}
