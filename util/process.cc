#include "util/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <thread>

#include "util/error.h"
#include "util/file.h"

extern char** environ;

namespace avm {

namespace fs = std::filesystem;
using namespace std::chrono;

namespace {

// Fields of /proc/PID/stat after "pid (comm) "; comm may hold spaces and ')'.
std::optional<std::vector<std::string>> stat_fields(pid_t pid) {
  std::optional<std::string> stat;
  try {
    stat = read_file_if_exists("/proc/" + std::to_string(pid) + "/stat");
  } catch (const Error&) {
    return std::nullopt;  // ESRCH while reading: gone
  }
  if (!stat) return std::nullopt;
  auto close = stat->rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::vector<std::string> fields;
  std::string cur;
  for (size_t i = close + 2; i < stat->size(); ++i) {
    char c = (*stat)[i];
    if (c == ' ' || c == '\n') {
      if (!cur.empty()) fields.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) fields.push_back(std::move(cur));
  return fields;
}

}  // namespace

ProcState proc_state(pid_t pid) {
  if (pid <= 0) return ProcState::Gone;
  auto f = stat_fields(pid);
  if (!f || f->empty()) return ProcState::Gone;
  switch ((*f)[0][0]) {
    case 'Z':
    case 'X':
    case 'x':
      return ProcState::Zombie;
    case 'T':
    case 't':
      return ProcState::Stopped;
    default:
      return ProcState::Running;
  }
}

std::optional<unsigned long long> proc_start_time(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  auto f = stat_fields(pid);
  // starttime is field 22 of stat; fields here start at field 3 (state).
  if (!f || f->size() < 20) return std::nullopt;
  return std::stoull((*f)[19]);
}

std::string proc_exe_name(pid_t pid) {
  std::optional<std::string> cmdline;
  try {
    cmdline = read_file_if_exists("/proc/" + std::to_string(pid) + "/cmdline");
  } catch (const Error&) {
    return {};
  }
  if (!cmdline) return {};
  return std::string(cmdline->c_str());
}

Fd open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  return Fd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
#else
  (void)pid;
  errno = ENOSYS;
  return Fd();
#endif
}

bool wait_for_exit(pid_t pid, milliseconds timeout) {
  auto deadline = steady_clock::now() + timeout;
  Fd pfd = open_pidfd(pid);
  if (!pfd) {
    if (errno == ESRCH) return true;
    // No pidfd support: poll /proc.
    while (proc_alive(pid)) {
      if (steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(milliseconds(20));
    }
    return true;
  }
  for (;;) {
    if (!proc_alive(pid)) return true;
    auto left = duration_cast<milliseconds>(deadline - steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{pfd.get(), POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) throw_errno("poll(pidfd)");
  }
}

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::optional<fs::path> find_program(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    if (::access(name.c_str(), X_OK) == 0) return fs::path(name);
    return std::nullopt;
  }
  const char* path = std::getenv("PATH");
  std::string p(path ? std::string_view(path) : std::string_view("/usr/local/bin:/usr/bin:/bin"));
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find(':', start);
    if (end == std::string::npos) end = p.size();
    fs::path dir = end > start ? fs::path(p.substr(start, end - start)) : fs::path(".");
    fs::path cand = dir / name;
    if (::access(cand.c_str(), X_OK) == 0 && !fs::is_directory(cand)) return cand;
    start = end + 1;
  }
  return std::nullopt;
}

namespace {

// The child's environment: ours with `extra` added or replacing.
std::vector<std::string> merged_env(const std::vector<std::string>& extra) {
  std::map<std::string, std::string> env;
  std::vector<std::string> order;
  for (char** e = environ; e && *e; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    std::string k = kv.substr(0, eq);
    if (!env.count(k)) order.push_back(k);
    env[k] = kv;
  }
  for (const auto& kv : extra) {
    std::string k = kv.substr(0, kv.find('='));
    if (!env.count(k)) order.push_back(k);
    env[k] = kv;
  }
  std::vector<std::string> out;
  for (const auto& k : order) out.push_back(env[k]);
  return out;
}

std::vector<char*> cstrs(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

[[noreturn]] void child_fail(int errfd, int err) {
  ssize_t r = ::write(errfd, &err, sizeof err);
  (void)r;
  ::_exit(127);
}

}  // namespace

Child spawn(const std::vector<std::string>& argv_in, const SpawnOptions& opts) {
  if (argv_in.empty()) throw Error("spawn: empty argv");
  auto exe = find_program(argv_in[0]);
  if (!exe) throw Error("cannot run " + argv_in[0] + ": not found in PATH");
  std::vector<std::string> argv = argv_in;
  std::vector<std::string> env = merged_env(opts.env);
  auto cargv = cstrs(argv);
  auto cenv = cstrs(env);
  std::string exe_s = exe->string();
  std::string cwd = opts.cwd.string();

  int errpipe[2];
  if (::pipe2(errpipe, O_CLOEXEC) != 0) throw_errno("pipe");
  Fd err_r(errpipe[0]), err_w(errpipe[1]);

  pid_t pid = ::fork();
  if (pid < 0) throw_errno("fork");
  if (pid == 0) {
    // Only async-signal-safe calls from here on.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int s : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGCHLD}) ::signal(s, SIG_DFL);
    if (opts.new_session) ::setsid();
    int in = opts.stdin_fd;
    if (in < 0) in = ::open("/dev/null", O_RDONLY);
    if (in != 0) ::dup2(in, 0);
    if (opts.stdout_fd >= 0 && opts.stdout_fd != 1) ::dup2(opts.stdout_fd, 1);
    if (opts.stderr_fd >= 0 && opts.stderr_fd != 2) ::dup2(opts.stderr_fd, 2);
    for (int fd : opts.keep_fds) {
      int fl = ::fcntl(fd, F_GETFD);
      if (fl >= 0) ::fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC);
    }
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) child_fail(err_w.get(), errno);
    ::execve(exe_s.c_str(), cargv.data(), cenv.data());
    child_fail(err_w.get(), errno);
  }
  err_w.reset();
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(err_r.get(), &child_errno, sizeof child_errno);
  } while (n < 0 && errno == EINTR);
  if (n == sizeof child_errno) {
    int st;
    ::waitpid(pid, &st, 0);
    throw_errno("cannot run " + argv_in[0], child_errno);
  }
  return Child(pid);
}

RunResult run(const std::vector<std::string>& argv, const RunOptions& opts) {
  int outp[2], errp[2], inp[2];
  if (::pipe2(outp, O_CLOEXEC) != 0 || ::pipe2(errp, O_CLOEXEC) != 0 ||
      ::pipe2(inp, O_CLOEXEC) != 0)
    throw_errno("pipe");
  Fd out_r(outp[0]), out_w(outp[1]), err_r(errp[0]), err_w(errp[1]), in_r(inp[0]),
      in_w(inp[1]);
  SpawnOptions so;
  so.cwd = opts.cwd;
  so.env = opts.env;
  so.stdin_fd = in_r.get();
  so.stdout_fd = out_w.get();
  so.stderr_fd = opts.merge_stderr ? out_w.get() : err_w.get();
  Child child = spawn(argv, so);
  out_w.reset();
  err_w.reset();
  in_r.reset();

  RunResult res;
  std::string_view input = opts.input;
  if (input.empty()) in_w.reset();
  ::fcntl(in_w.get(), F_SETFL, O_NONBLOCK);
  auto deadline = opts.timeout ? std::optional(steady_clock::now() + *opts.timeout) : std::nullopt;
  bool killed = false;
  char buf[65536];
  while (out_r || err_r) {
    std::vector<pollfd> fds;
    if (out_r) fds.push_back({out_r.get(), POLLIN, 0});
    if (err_r) fds.push_back({err_r.get(), POLLIN, 0});
    if (in_w) fds.push_back({in_w.get(), POLLOUT, 0});
    int wait_ms = -1;
    if (deadline) {
      auto left = duration_cast<milliseconds>(*deadline - steady_clock::now()).count();
      if (left <= 0 && !killed) {
        child.kill(SIGKILL);
        killed = true;
      }
      wait_ms = static_cast<int>(std::max<long long>(left, 0));
      if (killed) wait_ms = 1000;
    }
    int r = ::poll(fds.data(), fds.size(), wait_ms);
    if (r < 0) {
      if (errno == EINTR) continue;
      throw_errno("poll");
    }
    for (auto& p : fds) {
      if (!p.revents) continue;
      if (in_w && p.fd == in_w.get()) {
        ssize_t w = ::write(in_w.get(), input.data(), input.size());
        if (w > 0) input.remove_prefix(static_cast<size_t>(w));
        if (w < 0 && errno != EAGAIN && errno != EINTR) input = {};
        if (input.empty()) in_w.reset();
        continue;
      }
      Fd& f = (out_r && p.fd == out_r.get()) ? out_r : err_r;
      std::string& dst = (&f == &out_r) ? res.out : res.err;
      ssize_t m = ::read(f.get(), buf, sizeof buf);
      if (m > 0)
        dst.append(buf, static_cast<size_t>(m));
      else if (m == 0 || (errno != EINTR && errno != EAGAIN))
        f.reset();
    }
  }
  res.exit_code = child.wait();
  return res;
}

Child::Child(Child&& o) noexcept : pid_(std::exchange(o.pid_, -1)) {}
Child& Child::operator=(Child&& o) noexcept {
  if (this != &o) {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int st;
      ::waitpid(pid_, &st, 0);
    }
    pid_ = std::exchange(o.pid_, -1);
  }
  return *this;
}
Child::~Child() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int st;
    while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
  }
}
pid_t Child::release() noexcept { return std::exchange(pid_, -1); }
int Child::wait() {
  if (pid_ <= 0) throw Error("wait: no child");
  int st = 0;
  while (::waitpid(pid_, &st, 0) < 0) {
    if (errno != EINTR) throw_errno("waitpid");
  }
  pid_ = -1;
  return exit_code_of(st);
}
std::optional<int> Child::try_wait() {
  if (pid_ <= 0) throw Error("wait: no child");
  int st = 0;
  pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == 0) return std::nullopt;
  if (r < 0) throw_errno("waitpid");
  pid_ = -1;
  return exit_code_of(st);
}
void Child::kill(int sig) {
  if (pid_ > 0) ::kill(pid_, sig);
}

}  // namespace avm
