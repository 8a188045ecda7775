// Test fixtures for booting a guest image directly with QEMU (no launcher):
// a session folder with real keys and a real git repo, QEMU with the
// contract's command line, and small line-based QMP and QGA clients.
// Every resource has one owner: a failing test leaves no QEMU, socket or
// folder behind (QEMU also dies with the test process: setpriv --pdeathsig).
#pragma once

#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "launcher/image.h"
#include "launcher/vm.h"
#include "util/fd.h"
#include "util/process.h"
#include "util/temp_dir.h"

namespace guest_test {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// The image under test: $AGENT_VM_TEST_IMAGE (a name or folder), else "default".
avm::launcher::Image test_image();

// A free TCP port on 127.0.0.1.
int free_port();

// A session folder as the host writes it (docs/design.md): ssh keys, env,
// agent-cmd (the stand-in), meta.json and run/ (host-only), repo/ (a real git
// clone source with one commit), opencode/.
class SessionDir {
 public:
  // `owner`: the host user QEMU will run as (security_model=none); the whole
  // folder is given to it, as a session of that user would be. Without it the
  // folder is root's and prepared for mapped-xattr (QEMU as root).
  explicit SessionDir(bool stand_in = true, std::optional<uid_t> owner = std::nullopt);
  const fs::path& path() const { return dir_.path(); }
  fs::path repo() const { return path() / "repo"; }
  fs::path run() const { return path() / "run"; }
  fs::path client_key() const { return path() / "ssh" / "client"; }
  fs::path other_key() const { return keys_.path() / "other"; }
  std::string host_public_key() const;  // the pinned ssh_host_ed25519_key.pub

 private:
  avm::TempDir dir_{"guest-test-session"};
  avm::TempDir keys_{"guest-test-keys"};
};

// A newline-delimited JSON socket (QMP and QGA speak one JSON value a line).
class JsonSocket {
 public:
  // Connects, retrying until `deadline` (QEMU creates the socket at start).
  static JsonSocket connect(const fs::path& path, std::chrono::steady_clock::time_point deadline);
  void send(const boost::json::value& v);
  // The next JSON value, or nullopt at `deadline` or when the peer hangs up.
  std::optional<boost::json::value> read(std::chrono::steady_clock::time_point deadline);
  bool closed() const { return closed_; }

 private:
  avm::Fd fd_;
  std::string buf_;
  bool closed_ = false;
};

class Qmp {
 public:
  explicit Qmp(const fs::path& sock);
  boost::json::value execute(const std::string& cmd, boost::json::object args = {});
  // Waits for event `name` (events already buffered count); nullopt at deadline.
  std::optional<boost::json::object> wait_event(const std::string& name,
                                                std::chrono::steady_clock::time_point deadline);
  // Waits for the socket to close (QEMU exited).
  bool wait_closed(std::chrono::steady_clock::time_point deadline);

 private:
  JsonSocket s_;
  std::vector<boost::json::object> events_;
};

struct ExecResult {
  int exit_code = -1;
  std::string out, err;
};

class Qga {
 public:
  // Connects and syncs (guest-sync with a fresh id), retrying until deadline.
  Qga(const fs::path& sock, std::chrono::steady_clock::time_point deadline);
  boost::json::value execute(const std::string& cmd, boost::json::object args = {},
                             std::chrono::seconds timeout = 30s);
  // guest-exec + guest-exec-status until it exits (as root in the guest).
  ExecResult exec(const std::vector<std::string>& argv, std::chrono::seconds timeout = 60s);

 private:
  fs::path sock_;
  JsonSocket s_;
};

struct VmOptions {
  std::string extra_cmdline;   // appended to the manifest's command line
  // Run QEMU as this host user (uid = gid, no groups) with security_model=none;
  // the image files are hard-linked (or copied) where that user can read them.
  std::optional<uid_t> run_as;
  int memory_mib = 1024;       // the stand-in needs little; opencode itself wants 2 GiB
  int cpus = 2;
};

// QEMU started by the test with the launcher's command line
// (launcher::qemu_argv, under TCG), killed and reaped by its destructor.
class Vm {
 public:
  Vm(const avm::launcher::Image& image, const SessionDir& session, VmOptions opt = {});
  ~Vm();
  Vm(const Vm&) = delete;
  Vm& operator=(const Vm&) = delete;

  int ssh_port() const { return port_; }
  pid_t pid() const { return child_.pid(); }
  // This VM as the launcher addresses one (its -name, pid, sockets, port),
  // for the launcher's own waits (launcher::await_vm).
  avm::launcher::VmHandle handle() const;
  std::string console() const;
  Qmp& qmp();
  // Exits within `timeout`? Returns the exit code.
  std::optional<int> wait_exit(std::chrono::seconds timeout);
  const std::vector<std::string>& argv() const { return argv_; }

 private:
  const SessionDir& session_;
  int port_;
  std::vector<std::string> argv_;
  avm::Child child_;
  std::optional<Qmp> qmp_;
  std::optional<avm::TempDir> image_copy_;
};

// ssh to the guest as `agent` with `key`, checking the host key against the
// pinned one (StrictHostKeyChecking). Extra ssh options may come first.
avm::RunResult ssh(const Vm& vm, const SessionDir& s, const fs::path& key,
                   const std::string& command, std::chrono::seconds timeout = 60s,
                   const std::vector<std::string>& extra_opts = {});

// Retries `ssh true` until sshd accepts the client key or the deadline passes.
bool wait_for_ssh(const Vm& vm, const SessionDir& s, std::chrono::seconds timeout);

}  // namespace guest_test
