// Real peers for the qmp/ integration tests, each with one RAII owner that
// kills it: a QEMU with no guest, qemu-ga on the host, and a raw socat
// session to compare answers with.
//
// Sockets are bound by the test and handed to the peer already listening
// (QEMU: chardev fd=; qemu-ga: socket activation), so a client can connect
// the moment the peer is spawned: no polling for a socket file to appear.
#pragma once

#include <sys/types.h>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "util/fd.h"
#include "util/process.h"
#include "util/temp_dir.h"

namespace avm::qmp::test {

using namespace std::chrono_literals;

// A listening unix socket at `path`.
Fd listen_unix(const std::filesystem::path& path);

struct QemuOptions {
  int qmp_sockets = 1;         // more than one: several monitors, events go to all
  bool guest_agent_port = false;  // virtio-serial port org.qemu.guest_agent.0 on qga.sock
  std::vector<std::string> extra;  // more QEMU arguments
};

// qemu-system-x86_64 -machine microvm -nodefaults -accel tcg, no guest.
class TestQemu {
 public:
  explicit TestQemu(QemuOptions opts = {});
  const std::filesystem::path& qmp(int i = 0) const { return qmp_.at(static_cast<std::size_t>(i)); }
  std::filesystem::path qga() const { return dir_.path() / "qga.sock"; }
  pid_t pid() const { return child_.pid(); }
  // Waits (pidfd) for QEMU to exit and reaps it; its exit code. Throws on timeout.
  int wait_exit(std::chrono::milliseconds timeout);
  void kill(int sig) { child_.kill(sig); }
  std::string log() const;  // QEMU's stderr

 private:
  TempDir dir_{"agent-vm-qmp-it"};
  std::vector<std::filesystem::path> qmp_;
  Child child_;
};

// qemu-ga on the host, over a unix socket, with every command that could
// change the host (shutdown, suspend, set-time, file writes, fsfreeze,
// passwords, ssh keys) blocked.
class HostAgent {
 public:
  HostAgent();
  const std::filesystem::path& socket() const { return socket_; }

 private:
  TempDir dir_{"agent-vm-qga-it"};
  std::filesystem::path socket_;
  Child child_;
};

// `socat - UNIX-CONNECT:<socket>`: the raw session the acceptance compares with.
class Socat {
 public:
  explicit Socat(const std::filesystem::path& socket);
  ~Socat();
  // The next line from the server, parsed.
  boost::json::value read(std::chrono::milliseconds timeout = 10s);
  void write(const std::string& line);
  // Sends the command with `id` and returns the message carrying that id.
  boost::json::object call(const std::string& command, const boost::json::object& args, int id,
                           std::chrono::milliseconds timeout = 10s);

 private:
  Child child_;
  Fd to_socat_, from_socat_;
  std::string buf_;
};

}  // namespace avm::qmp::test
