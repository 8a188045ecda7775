// The guest contract (docs/design.md), one assertion per point, on a real boot of
// the image under test ($AGENT_VM_TEST_IMAGE, default: the store's
// "default") under TCG. QEMU is started here directly, not by the launcher.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <memory>
#include <thread>

#include "guest_vm.h"
#include "util/file.h"
#include "util/strings.h"

using namespace guest_test;
using avm::read_file;
using avm::read_file_if_exists;
using clock_type = std::chrono::steady_clock;

namespace {

// One booted guest shared by the [contract] cases below, which run in one
// process, in file order (ctest runs each tag as one test); the power-button
// case at the end stops it and boots the same session again.
struct Booted {
  avm::launcher::Image image = test_image();
  SessionDir session;
  std::unique_ptr<Vm> vm = std::make_unique<Vm>(image, session);
  bool ssh_up = wait_for_ssh(*vm, session, 300s);
};

Booted& booted() {
  static Booted b;
  return b;
}

std::string pinned_opencode_version() {
  auto pin = avm::launcher::parse_opencode_pin(
      read_file(fs::path(AGENT_VM_TEST_SOURCE) / "guest/common/opencode.pin"));
  return pin.version;
}

// A one-shot TCP server on the host's loopback: the guest reaches it as
// 10.0.2.2 through QEMU user networking.
class OneShotServer {
 public:
  OneShotServer() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    ::listen(fd_.get(), 1);
    thread_ = std::thread([this] {
      pollfd p{fd_.get(), POLLIN, 0};
      if (::poll(&p, 1, 120000) <= 0) return;
      avm::Fd c(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      const char msg[] = "agent-vm outbound ok\n";
      ::send(c.get(), msg, sizeof msg - 1, MSG_NOSIGNAL);
    });
  }
  ~OneShotServer() {
    ::shutdown(fd_.get(), SHUT_RDWR);
    thread_.join();
  }
  int port() const { return port_; }

 private:
  avm::Fd fd_;
  int port_ = 0;
  std::thread thread_;
};

}  // namespace

TEST_CASE("probe: agentvm.probe=1 prints the probe line and powers off at once", "[probe]") {
  auto image = test_image();
  SessionDir session;
  VmOptions o;
  o.extra_cmdline = "agentvm.probe=1";
  Vm vm(image, session, o);
  auto rc = vm.wait_exit(120s);
  INFO(vm.console());
  REQUIRE(rc.has_value());
  CHECK(vm.console().find("agent-vm: probe ok") != std::string::npos);
}

TEST_CASE("sshd accepts the session's client key, with the pinned host key", "[contract]") {
  auto& b = booted();
  INFO(avm::tail_lines(b.vm->console(), 40));
  REQUIRE(b.ssh_up);
  auto r = ssh(*b.vm, b.session, b.session.client_key(), "id -un");
  CHECK(avm::trim(r.out) == "agent");
}

TEST_CASE("sshd refuses a key that is not the session's", "[contract]") {
  auto& b = booted();
  REQUIRE(b.ssh_up);
  auto r = ssh(*b.vm, b.session, b.session.other_key(), "true");
  CHECK(r.exit_code == 255);
}

TEST_CASE("the guest's host key is the pinned one", "[contract]") {
  auto& b = booted();
  REQUIRE(b.ssh_up);
  // Scanned independently of known_hosts: the key sshd presents.
  avm::RunOptions o;
  o.timeout = 30s;
  auto r = avm::run({"ssh-keyscan", "-t", "ed25519", "-p", std::to_string(b.vm->ssh_port()),
                     "127.0.0.1"}, o);
  auto pinned = avm::split(b.session.host_public_key(), ' ');
  REQUIRE(pinned.size() >= 2);
  CHECK(r.out.find(pinned[1]) != std::string::npos);
}

TEST_CASE("sshd offers no password login", "[contract]") {
  auto& b = booted();
  REQUIRE(b.ssh_up);
  auto r = ssh(*b.vm, b.session, b.session.other_key(), "true", 60s,
               {"-o", "PreferredAuthentications=password,keyboard-interactive",
                "-o", "PubkeyAuthentication=no"});
  // sshd lists the methods left: public keys only.
  CHECK_THAT(r.err, Catch::Contains("Permission denied (publickey)."));
}

TEST_CASE("/session is the 9p tag 'session', mounted read-write", "[contract]") {
  auto& b = booted();
  REQUIRE(b.ssh_up);
  auto r = ssh(*b.vm, b.session, b.session.client_key(),
               "findmnt -rn -o SOURCE,FSTYPE,OPTIONS /session");
  CHECK_THAT(r.out, Catch::StartsWith("session 9p rw,"));
}

TEST_CASE("files the guest writes are owned by the host user running QEMU", "[contract]") {
  auto& b = booted();
  REQUIRE(b.ssh_up);
  auto r = ssh(*b.vm, b.session, b.session.client_key(),
               "echo from-guest > /session/repo/written-by-guest && "
               "echo edited-in-guest >> /session/repo/README.md");
  REQUIRE(r.exit_code == 0);
  struct stat st {};
  REQUIRE(::stat((b.session.repo() / "written-by-guest").c_str(), &st) == 0);
  CHECK(st.st_uid == ::geteuid());
  // ... and the agent can edit files cloned on the host.
  CHECK(read_file(b.session.repo() / "README.md") == "cloned on the host\nedited-in-guest\n");
}

TEST_CASE("the agent runs as an unprivileged user 'agent'", "[contract]") {
  auto& b = booted();
  REQUIRE(b.ssh_up);
  auto r = ssh(*b.vm, b.session, b.session.client_key(),
               "ps -o user= -p $(tmux list-panes -t agent -F '#{pane_pid}')");
  CHECK(avm::trim(r.out) == "agent");
}

TEST_CASE("tmux session 'agent' runs the stand-in in /session/repo (spawn)", "[contract]") {
  auto& b = booted();
  REQUIRE(b.ssh_up);
  auto r = ssh(*b.vm, b.session, b.session.client_key(),
               "tmux display-message -p -t agent '#{pane_current_path}' && "
               "tmux capture-pane -p -t agent");
  CHECK_THAT(r.out, Catch::StartsWith("/session/repo\n") &&
                        Catch::Contains("agent-vm stand-in agent (spawn)"));
}

TEST_CASE("the agent gets XDG_DATA_HOME and the variables of /session/env", "[contract]") {
  auto& b = booted();
  REQUIRE(b.ssh_up);
  auto r = ssh(*b.vm, b.session, b.session.client_key(),
               "tr '\\0' '\\n' < /proc/$(tmux list-panes -t agent -F '#{pane_pid}')/environ");
  CHECK_THAT(r.out, Catch::Contains("\nXDG_DATA_HOME=/session/opencode\n") &&
                        Catch::Contains("\nAGENT_VM_TEST_VAR=hello from the host env\n") &&
                        Catch::Contains("\nHTTPS_PROXY=http://10.0.2.100:3128\n") &&
                        Catch::Contains("\nAGENT_VM_MODE=spawn\n"));
}

TEST_CASE("the host-only parts of /session are hidden from the guest", "[contract]") {
  auto& b = booted();
  REQUIRE(b.ssh_up);
  auto r = ssh(*b.vm, b.session, b.session.client_key(),
               "cat /session/meta.json; ls /session/run; echo done");
  CHECK(r.out == "done\n");
}

TEST_CASE("qemu-guest-agent answers guest-ping on org.qemu.guest_agent.0", "[contract]") {
  auto& b = booted();
  Qga qga(b.session.run() / "qga.sock", clock_type::now() + 120s);
  CHECK(qga.execute("guest-ping").is_object());
}

TEST_CASE("agent-status reports the agent through QGA", "[contract]") {
  auto& b = booted();
  Qga qga(b.session.run() / "qga.sock", clock_type::now() + 120s);
  auto r = qga.exec({"/usr/libexec/agent-vm/agent-status"});
  CHECK((r.exit_code == 0 && r.out == "running\n"));
}

TEST_CASE("outbound network works through QEMU user networking", "[contract]") {
  auto& b = booted();
  REQUIRE(b.ssh_up);
  OneShotServer server;
  auto r = ssh(*b.vm, b.session, b.session.client_key(),
               "exec 3<>/dev/tcp/10.0.2.2/" + std::to_string(server.port()) + " && cat <&3");
  CHECK(r.out == "agent-vm outbound ok\n");
}

TEST_CASE("opencode --version in the guest prints the pinned version", "[contract]") {
  auto& b = booted();
  REQUIRE(b.ssh_up);
  // Under TCG opencode takes ~15 s to start.
  auto r = ssh(*b.vm, b.session, b.session.client_key(), "opencode --version", 300s);
  CHECK(avm::trim(r.out) == pinned_opencode_version());
}

TEST_CASE("the power button stops the agent politely, then the guest powers off", "[contract]") {
  auto& b = booted();
  REQUIRE(b.ssh_up);
  auto& qmp = b.vm->qmp();
  qmp.execute("system_powerdown");
  auto ev = qmp.wait_event("SHUTDOWN", clock_type::now() + 120s);
  INFO(avm::tail_lines(b.vm->console(), 40));
  REQUIRE(ev.has_value());
  CHECK(ev->at("data").as_object().at("guest").as_bool());
  CHECK(b.vm->wait_exit(60s).has_value());
  // The stand-in saw SIGTERM and wrote to /session before it was unmounted.
  CHECK(read_file_if_exists(b.session.repo() / ".agent-vm-stand-in").value_or("") ==
        "spawn\nstopped\n");

  SECTION("the next boot of the same session resumes") {
    b.vm.reset();
    b.vm = std::make_unique<Vm>(b.image, b.session);
    REQUIRE(wait_for_ssh(*b.vm, b.session, 300s));
    auto r = ssh(*b.vm, b.session, b.session.client_key(), "tmux capture-pane -p -t agent");
    CHECK_THAT(r.out, Catch::Contains("agent-vm stand-in agent (resume)"));
    CHECK(read_file(b.session.repo() / ".agent-vm-stand-in") == "spawn\nstopped\nresume\n");
    b.vm.reset();
  }
}

TEST_CASE("a power button pressed during boot still powers the guest off", "[press-during-boot]") {
  auto image = test_image();
  SessionDir session;
  Vm vm(image, session);
  auto& qmp = vm.qmp();
  // Pressed while the guest is still starting; like the launcher, press once
  // more if no SHUTDOWN came (a press before the button driver is lost).
  qmp.execute("system_powerdown");
  auto ev = qmp.wait_event("SHUTDOWN", clock_type::now() + 60s);
  if (!ev) {
    qmp.execute("system_powerdown");
    ev = qmp.wait_event("SHUTDOWN", clock_type::now() + 120s);
  }
  INFO(avm::tail_lines(vm.console(), 40));
  REQUIRE(ev.has_value());
  CHECK(ev->at("data").as_object().at("guest").as_bool());
  CHECK(vm.wait_exit(60s).has_value());
}

TEST_CASE("QEMU as an ordinary user: the agent takes the host user's uid, files keep one owner",
          "[share-none]") {
  // security_model=none: what the guest writes belongs to QEMU's user, and
  // the agent edits files cloned on the host because it has their owner's uid.
  constexpr uid_t kHostUser = 4242;
  auto image = test_image();
  SessionDir session(true, kHostUser);
  VmOptions o;
  o.run_as = kHostUser;
  Vm vm(image, session, o);
  INFO(avm::tail_lines(vm.console(), 40));
  REQUIRE(wait_for_ssh(vm, session, 300s));
  auto r = ssh(vm, session, session.client_key(),
               "id -u && echo from-guest > /session/repo/written-by-guest && "
               "echo edited-in-guest >> /session/repo/README.md");
  CHECK(r.out == "4242\n");
  struct stat st {};
  REQUIRE(::stat((session.repo() / "written-by-guest").c_str(), &st) == 0);
  CHECK(st.st_uid == kHostUser);
  CHECK(read_file(session.repo() / "README.md") == "cloned on the host\nedited-in-guest\n");
}
