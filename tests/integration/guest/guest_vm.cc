#include "guest_vm.h"

#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <stdexcept>
#include <thread>

#include "launcher/share.h"
#include "launcher/vm_spec.h"
#include "util/file.h"
#include "util/strings.h"

namespace guest_test {

namespace json = boost::json;
using avm::RunOptions;
using avm::RunResult;
using clock_type = std::chrono::steady_clock;

namespace {

RunResult must_run(const std::vector<std::string>& argv, RunOptions o = {}) {
  if (!o.timeout) o.timeout = 60s;
  RunResult r = avm::run(argv, o);
  if (r.exit_code != 0)
    throw std::runtime_error(avm::shell_join(argv) + " failed (" + std::to_string(r.exit_code) +
                             "): " + r.out + r.err);
  return r;
}

}  // namespace

avm::launcher::Image test_image() {
  const char* e = std::getenv("AGENT_VM_TEST_IMAGE");
  return avm::launcher::load_image(e && *e ? e : "default");
}

int free_port() {
  avm::Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
    throw std::runtime_error("bind: " + std::string(std::strerror(errno)));
  socklen_t len = sizeof a;
  ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

// --- SessionDir -------------------------------------------------------------

SessionDir::SessionDir(bool stand_in, std::optional<uid_t> owner) {
  fs::path p = path();
  fs::create_directories(p / "ssh");
  fs::create_directories(p / "run");
  fs::create_directories(p / "opencode");
  must_run({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "agent-vm-host", "-f",
            (p / "ssh" / "ssh_host_ed25519_key").string()});
  must_run({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "agent-vm-client", "-f",
            (p / "ssh" / "client").string()});
  must_run({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "someone-else", "-f",
            (keys_.path() / "other").string()});
  fs::copy_file(p / "ssh" / "client.pub", p / "ssh" / "authorized_keys");
  avm::write_file_atomic(p / "env", "AGENT_VM_TEST_VAR=hello from the host env\n"
                                    "HTTPS_PROXY=http://10.0.2.100:3128\n", 0600);
  avm::write_file_atomic(p / "prompt.txt", "say hello\n", 0644);
  if (stand_in)
    avm::write_file_atomic(p / "agent-cmd", "/usr/libexec/agent-vm/stand-in-agent\n", 0644);
  avm::write_file_atomic(p / "meta.json", "{\"schema\":1,\"secret\":\"host only\"}\n", 0600);
  // A real git repository, as the clone would leave it (owned by the host user).
  fs::create_directories(repo());
  RunOptions o;
  o.cwd = repo();
  o.env = {"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.invalid", "GIT_COMMITTER_NAME=t",
           "GIT_COMMITTER_EMAIL=t@example.invalid"};
  must_run({"git", "init", "-q", "-b", "main"}, o);
  avm::write_file_atomic(repo() / "README.md", "cloned on the host\n", 0644);
  must_run({"git", "add", "README.md"}, o);
  must_run({"git", "commit", "-q", "-m", "first"}, o);
  ::chmod(p.c_str(), 0700);
  if (owner) {
    ::lchown(p.c_str(), *owner, *owner);
    for (const auto& e : fs::recursive_directory_iterator(p))
      ::lchown(e.path().c_str(), *owner, *owner);
  } else {
    avm::launcher::prepare_share_for_guest(p);
  }
}

std::string SessionDir::host_public_key() const {
  return avm::trim(avm::read_file(path() / "ssh" / "ssh_host_ed25519_key.pub"));
}

// --- JsonSocket ---------------------------------------------------------------

JsonSocket JsonSocket::connect(const fs::path& path, clock_type::time_point deadline) {
  for (;;) {
    avm::Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
      JsonSocket s;
      s.fd_ = std::move(fd);
      return s;
    }
    if (clock_type::now() > deadline)
      throw std::runtime_error("cannot connect to " + path.string() + ": " + std::strerror(errno));
    // QEMU creates the socket as it starts: a short pause between attempts.
    std::this_thread::sleep_for(50ms);
  }
}

void JsonSocket::send(const json::value& v) {
  std::string line = json::serialize(v) + "\n";
  const char* p = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::send(fd_.get(), p, left, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(std::string("send: ") + std::strerror(errno));
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

std::optional<json::value> JsonSocket::read(clock_type::time_point deadline) {
  for (;;) {
    auto nl = buf_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      // QGA may send a 0xFF sentinel before a guest-sync-delimited reply.
      auto start = line.find('{');
      if (start == std::string::npos) continue;
      return json::parse(line.substr(start));
    }
    if (closed_) return std::nullopt;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{fd_.get(), POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
    if (r <= 0) continue;
    char tmp[65536];
    ssize_t n = ::read(fd_.get(), tmp, sizeof tmp);
    if (n <= 0) {
      closed_ = true;
      continue;
    }
    buf_.append(tmp, static_cast<std::size_t>(n));
  }
}

// --- Qmp ------------------------------------------------------------------------

Qmp::Qmp(const fs::path& sock) : s_(JsonSocket::connect(sock, clock_type::now() + 30s)) {
  auto greeting = s_.read(clock_type::now() + 30s);
  if (!greeting || !greeting->as_object().contains("QMP"))
    throw std::runtime_error("QMP: no greeting");
  execute("qmp_capabilities");
}

json::value Qmp::execute(const std::string& cmd, json::object args) {
  static int next_id = 0;
  std::string id = "t" + std::to_string(++next_id);
  json::object req{{"execute", cmd}, {"id", id}};
  if (!args.empty()) req["arguments"] = std::move(args);
  s_.send(req);
  auto deadline = clock_type::now() + 30s;
  for (;;) {
    auto v = s_.read(deadline);
    if (!v) throw std::runtime_error("QMP " + cmd + ": no reply");
    auto& o = v->as_object();
    if (o.contains("event")) {
      events_.push_back(o);
      continue;
    }
    if (o.contains("id") && o.at("id") == json::value(id)) {
      if (o.contains("error"))
        throw std::runtime_error("QMP " + cmd + ": " + json::serialize(o.at("error")));
      return o.at("return");
    }
  }
}

std::optional<json::object> Qmp::wait_event(const std::string& name,
                                            clock_type::time_point deadline) {
  for (;;) {
    for (auto it = events_.begin(); it != events_.end(); ++it) {
      if (it->at("event").as_string() == name) {
        json::object e = *it;
        events_.erase(it);
        return e;
      }
    }
    auto v = s_.read(deadline);
    if (!v) return std::nullopt;
    if (v->as_object().contains("event")) events_.push_back(v->as_object());
  }
}

bool Qmp::wait_closed(clock_type::time_point deadline) {
  while (!s_.closed()) {
    auto v = s_.read(deadline);
    if (v && v->as_object().contains("event")) events_.push_back(v->as_object());
    if (!v && !s_.closed()) return false;
  }
  return true;
}

// --- Qga ------------------------------------------------------------------------

Qga::Qga(const fs::path& sock, clock_type::time_point deadline)
    : sock_(sock), s_(JsonSocket::connect(sock, deadline)) {
  // guest-sync with a fresh id tells our reply from anything stale; the agent
  // may not be up yet, so ask again each few seconds until the deadline.
  std::mt19937 rng(std::random_device{}());
  for (;;) {
    long id = static_cast<long>(rng() % 1000000000);
    s_.send(json::object{{"execute", "guest-sync"}, {"arguments", {{"id", id}}}});
    auto until = std::min(deadline, clock_type::now() + 3s);
    while (auto v = s_.read(until)) {
      auto& o = v->as_object();
      if (o.contains("return") && o.at("return").is_int64() && o.at("return").as_int64() == id)
        return;
    }
    if (clock_type::now() > deadline) throw std::runtime_error("QGA: no answer to guest-sync");
  }
}

json::value Qga::execute(const std::string& cmd, json::object args, std::chrono::seconds timeout) {
  json::object req{{"execute", cmd}};
  if (!args.empty()) req["arguments"] = std::move(args);
  s_.send(req);
  auto v = s_.read(clock_type::now() + timeout);
  if (!v) throw std::runtime_error("QGA " + cmd + ": no reply");
  auto& o = v->as_object();
  if (o.contains("error"))
    throw std::runtime_error("QGA " + cmd + ": " + json::serialize(o.at("error")));
  return o.at("return");
}

ExecResult Qga::exec(const std::vector<std::string>& argv, std::chrono::seconds timeout) {
  json::array args;
  for (std::size_t i = 1; i < argv.size(); ++i) args.emplace_back(argv[i]);
  auto r = execute("guest-exec",
                   {{"path", argv.at(0)}, {"arg", args}, {"capture-output", true}});
  auto pid = r.as_object().at("pid").as_int64();
  auto deadline = clock_type::now() + timeout;
  auto decode = [](const json::object& o, const char* k) -> std::string {
    if (!o.contains(k)) return {};
    // base64, by hand: the tests need nothing more.
    static const std::string tbl =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string in(o.at(k).as_string()), out;
    int val = 0, bits = -8;
    for (char c : in) {
      auto pos = tbl.find(c);
      if (pos == std::string::npos) break;
      val = (val << 6) + static_cast<int>(pos);
      bits += 6;
      if (bits >= 0) {
        out.push_back(static_cast<char>((val >> bits) & 0xFF));
        bits -= 8;
      }
    }
    return out;
  };
  for (;;) {
    auto st = execute("guest-exec-status", {{"pid", pid}}).as_object();
    if (st.at("exited").as_bool()) {
      ExecResult e;
      e.exit_code = st.contains("exitcode") ? static_cast<int>(st.at("exitcode").as_int64()) : -1;
      e.out = decode(st, "out-data");
      e.err = decode(st, "err-data");
      return e;
    }
    if (clock_type::now() > deadline)
      throw std::runtime_error("QGA guest-exec " + argv.at(0) + ": still running after timeout");
    // guest-exec-status has no blocking form: ask again shortly.
    std::this_thread::sleep_for(100ms);
  }
}

// --- Vm ---------------------------------------------------------------------------

namespace {
constexpr const char* kVmName = "agent-vm-guest-test";  // QEMU's -name
}  // namespace

Vm::Vm(const avm::launcher::Image& img, const SessionDir& s, VmOptions opt)
    : session_(s), port_(free_port()) {
  namespace L = avm::launcher;
  fs::path run = s.run();
  // The launcher's own command line for this spec (launcher/vm_spec.h).
  L::VmSpec spec;
  spec.name = kVmName;
  spec.accel = L::Accel::Tcg;
  spec.cpus = static_cast<unsigned>(opt.cpus);
  spec.memory_mib = static_cast<unsigned>(opt.memory_mib);
  spec.kernel = img.kernel;
  spec.initrd = img.initrd;
  spec.rootfs = img.rootfs;
  if (opt.run_as) {
    // The store may sit in a home QEMU's user cannot enter (/root is 0700).
    image_copy_.emplace("guest-test-image");
    ::chmod(image_copy_->path().c_str(), 0755);
    for (fs::path* f : {&spec.kernel, &spec.initrd, &spec.rootfs}) {
      fs::path to = image_copy_->path() / f->filename();
      std::error_code ec;
      fs::create_hard_link(*f, to, ec);
      if (ec) fs::copy_file(*f, to);
      *f = to;
    }
  }
  spec.cmdline = img.cmdline;
  if (!opt.extra_cmdline.empty()) spec.cmdline += " " + opt.extra_cmdline;
  spec.tsc_khz = L::host_tsc_khz();
  spec.share_dir = s.path();
  spec.share_model = L::share_model_for_uid(opt.run_as ? *opt.run_as : ::geteuid());
  spec.ssh_port = static_cast<std::uint16_t>(port_);
  spec.qmp_socket = run / "qmp.sock";
  spec.qga_socket = run / "qga.sock";
  spec.console_log = run / "console.log";
  // QEMU dies with the test process, however it ends.
  argv_ = {"setpriv", "--pdeathsig", "KILL"};
  if (opt.run_as) {
    std::string id = std::to_string(*opt.run_as);
    argv_.insert(argv_.end(), {"--reuid", id, "--regid", id, "--clear-groups"});
  }
  argv_.push_back("--");
  auto q = L::qemu_argv(spec);
  argv_.insert(argv_.end(), q.begin(), q.end());
  fs::remove(run / "qmp.sock");
  fs::remove(run / "qga.sock");
  avm::SpawnOptions so;
  so.new_session = true;
  child_ = avm::spawn(argv_, so);
}

avm::launcher::VmHandle Vm::handle() const {
  avm::launcher::VmHandle h;
  h.name = kVmName;
  h.pid = pid();
  h.qmp_socket = session_.run() / "qmp.sock";
  h.observe_socket = avm::launcher::observe_socket_for(h.qmp_socket);
  h.qga_socket = session_.run() / "qga.sock";
  h.console_log = session_.run() / "console.log";
  h.ssh_port = static_cast<std::uint16_t>(port_);
  return h;
}

Vm::~Vm() {
  qmp_.reset();
  if (child_.pid() > 0 && !child_.try_wait()) {
    child_.kill(SIGKILL);
    child_.wait();
  }
}

std::string Vm::console() const {
  return avm::read_file_if_exists(session_.run() / "console.log").value_or("");
}

Qmp& Vm::qmp() {
  if (!qmp_) qmp_.emplace(session_.run() / "qmp.sock");
  return *qmp_;
}

std::optional<int> Vm::wait_exit(std::chrono::seconds timeout) {
  if (auto rc = child_.try_wait()) return rc;
  if (!avm::wait_for_exit(child_.pid(), timeout)) return std::nullopt;
  return child_.wait();
}

// --- ssh ----------------------------------------------------------------------------

RunResult ssh(const Vm& vm, const SessionDir& s, const fs::path& key, const std::string& command,
              std::chrono::seconds timeout, const std::vector<std::string>& extra_opts) {
  // known_hosts holds the pinned key only: any other host key is refused.
  fs::path kh = s.path() / "known_hosts.test";
  avm::write_file_atomic(kh, "[127.0.0.1]:" + std::to_string(vm.ssh_port()) + " " +
                                 s.host_public_key() + "\n");
  std::vector<std::string> argv = {"ssh"};
  argv.insert(argv.end(), extra_opts.begin(), extra_opts.end());
  std::vector<std::string> rest = {
      "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
      "-o", "UserKnownHostsFile=" + kh.string(), "-o", "GlobalKnownHostsFile=/dev/null",
      "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "ConnectTimeout=10",
      "-o", "LogLevel=ERROR", "-i", key.string(), "-p", std::to_string(vm.ssh_port()),
      "agent@127.0.0.1", command};
  argv.insert(argv.end(), rest.begin(), rest.end());
  RunOptions o;
  o.timeout = timeout;
  return avm::run(argv, o);
}

bool wait_for_ssh(const Vm& vm, const SessionDir& s, std::chrono::seconds timeout) {
  auto deadline = clock_type::now() + timeout;
  while (clock_type::now() < deadline) {
    if (ssh(vm, s, s.client_key(), "true", 20s).exit_code == 0) return true;
    // sshd gives no signal of its own that it is up: try again shortly.
    std::this_thread::sleep_for(250ms);
  }
  return false;
}

}  // namespace guest_test
