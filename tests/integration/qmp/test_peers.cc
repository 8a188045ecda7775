#include "test_peers.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "util/error.h"

namespace avm::qmp::test {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

Fd listen_unix(const std::filesystem::path& path) {
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) throw_errno("socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) throw_errno("bind " + path.string());
  if (::listen(fd.get(), 8) < 0) throw_errno("listen");
  return fd;
}

TestQemu::TestQemu(QemuOptions opts) {
  std::vector<std::string> argv = {"qemu-system-x86_64", "-machine", "microvm", "-nodefaults",
                                   "-no-user-config",    "-display", "none",    "-accel",
                                   "tcg"};
  std::vector<Fd> listeners;
  SpawnOptions so;
  for (int i = 0; i < opts.qmp_sockets; ++i) {
    auto path = dir_.path() / (i == 0 ? "qmp.sock" : "qmp" + std::to_string(i) + ".sock");
    listeners.push_back(listen_unix(path));
    qmp_.push_back(path);
    std::string id = "qmp" + std::to_string(i);
    argv.insert(argv.end(), {"-chardev", "socket,id=" + id + ",fd=" + std::to_string(listeners.back().get()) +
                                             ",server=on,wait=off",
                             "-mon", "chardev=" + id + ",mode=control"});
    so.keep_fds.push_back(listeners.back().get());
  }
  if (opts.guest_agent_port) {
    listeners.push_back(listen_unix(qga()));
    argv.insert(argv.end(), {"-device", "virtio-serial-device", "-chardev",
                             "socket,id=qga,fd=" + std::to_string(listeners.back().get()) + ",server=on,wait=off",
                             "-device", "virtserialport,chardev=qga,name=org.qemu.guest_agent.0"});
    so.keep_fds.push_back(listeners.back().get());
  }
  argv.insert(argv.end(), opts.extra.begin(), opts.extra.end());
  Fd log(::open((dir_.path() / "qemu.log").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  so.stdout_fd = log.get();
  so.stderr_fd = log.get();
  child_ = spawn(argv, so);
  // QEMU has its own copies of the listening sockets now.
}

int TestQemu::wait_exit(std::chrono::milliseconds timeout) {
  if (!wait_for_exit(child_.pid(), timeout))
    throw std::runtime_error("QEMU did not exit within " + std::to_string(timeout.count()) + " ms");
  return child_.wait();
}

std::string TestQemu::log() const {
  std::ifstream in(dir_.path() / "qemu.log");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

HostAgent::HostAgent() {
  socket_ = dir_.path() / "qga.sock";
  Fd listener = listen_unix(socket_);
  std::string blocked =
      "guest-shutdown,guest-suspend-disk,guest-suspend-ram,guest-suspend-hybrid,guest-set-time,"
      "guest-fsfreeze-freeze,guest-fsfreeze-freeze-list,guest-fsfreeze-thaw,guest-set-user-password,"
      "guest-set-vcpus,guest-set-memory-blocks,guest-file-open,guest-ssh-add-authorized-keys,"
      "guest-ssh-remove-authorized-keys";
  // systemd-style socket activation: the listening socket as fd 3, and
  // LISTEN_PID naming the agent itself (hence the exec from sh).
  std::string script = "exec 3<&" + std::to_string(listener.get()) +
                       "; LISTEN_PID=$$ LISTEN_FDS=1 exec qemu-ga -t \"$1\" -f \"$1/qga.pid\" -b \"$2\"";
  SpawnOptions so;
  so.keep_fds = {listener.get()};
  child_ = spawn({"sh", "-c", script, "sh", dir_.path().string(), blocked}, so);
}

Socat::Socat(const std::filesystem::path& socket) {
  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) < 0 || ::pipe2(out, O_CLOEXEC) < 0) throw_errno("pipe");
  Fd in_r(in[0]), out_w(out[1]);
  to_socat_ = Fd(in[1]);
  from_socat_ = Fd(out[0]);
  SpawnOptions so;
  so.stdin_fd = in_r.get();
  so.stdout_fd = out_w.get();
  child_ = spawn({"socat", "-", "UNIX-CONNECT:" + socket.string()}, so);
}

Socat::~Socat() {
  to_socat_.reset();  // EOF: socat ends; the Child owner kills it if not
}

void Socat::write(const std::string& line) {
  std::string s = line + "\n";
  const char* p = s.data();
  std::size_t left = s.size();
  while (left > 0) {
    ssize_t n = ::write(to_socat_.get(), p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno("write to socat");
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

json::value Socat::read(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    auto nl = buf_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      return json::parse(line);
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) throw std::runtime_error("socat: no line within " + std::to_string(timeout.count()) + " ms");
    pollfd p{from_socat_.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char chunk[65536];
    ssize_t n = ::read(from_socat_.get(), chunk, sizeof chunk);
    if (n == 0) throw std::runtime_error("socat: end of output");
    if (n < 0 && errno != EINTR) throw_errno("read from socat");
    if (n > 0) buf_.append(chunk, static_cast<std::size_t>(n));
  }
}

json::object Socat::call(const std::string& command, const json::object& args, int id,
                         std::chrono::milliseconds timeout) {
  json::object req{{"execute", command}};
  if (!args.empty()) req["arguments"] = args;
  req["id"] = id;
  write(json::serialize(req));
  auto deadline = Clock::now() + timeout;
  for (;;) {
    json::value m = read(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
    auto& o = m.as_object();
    if (auto* rid = o.if_contains("id"); rid && *rid == id) return std::move(o);
  }
}

}  // namespace avm::qmp::test
