#include "util/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
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

std::string proc_exe_name(pid_t pid) {
  auto argv = platform::process_argv(pid);
  return argv.empty() ? std::string() : argv[0];
}

bool wait_for_exit(pid_t pid, milliseconds timeout) {
  auto deadline = steady_clock::now() + timeout;
  Fd pfd = platform::exit_watch(pid);
  if (!pfd) {
    if (errno == ESRCH) return true;
    // Nothing to wait on here: look at the process table now and then.
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
    if (r < 0 && errno != EINTR) throw_errno("poll(exit watch)");
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

struct Pipe {
  Fd r, w;
};
Pipe make_pipe() {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) throw_errno("pipe");
  return {Fd(p[0]), Fd(p[1])};
}

// Reads until EINTR-free success or failure; returns bytes read.
ssize_t read_full(int fd, void* buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::read(fd, static_cast<char*>(buf) + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  return static_cast<ssize_t>(got);
}

// The child's side, between fork and exec: async-signal-safe calls only.
// Everything it needs was prepared before fork.
struct ChildPlan {
  const char* exe;
  char* const* argv;
  char* const* envp;
  const char* cwd;  // nullptr: stay
  int report_fd;    // CLOEXEC pipe to the parent
  int devnull;
  int max_fd;       // for walking the fds when cloexec_from cannot
  const SpawnOptions* opts;
};

[[noreturn]] void child_fail(int fd, int err) {
  ssize_t r = ::write(fd, &err, sizeof err);
  (void)r;
  ::_exit(127);
}

[[noreturn]] void run_child(const ChildPlan& plan) {
  const SpawnOptions& o = *plan.opts;
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int s : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD, SIGWINCH}) ::signal(s, SIG_DFL);
  if (o.detach) {
    // The intermediate child leaves our session and exits at once; its
    // child is reparented away from us and reports its pid.
    ::setsid();
    pid_t grandchild = ::fork();
    if (grandchild != 0) ::_exit(grandchild < 0 ? 1 : 0);
    pid_t me = ::getpid();
    if (::write(plan.report_fd, &me, sizeof me) != sizeof me) ::_exit(127);
  } else if (o.new_session) {
    ::setsid();
  } else if (o.own_group) {
    ::setpgid(0, 0);
  }
  int in = o.stdin_fd >= 0 ? o.stdin_fd : plan.devnull;
  if (in != 0 && ::dup2(in, 0) < 0) child_fail(plan.report_fd, errno);
  if (o.stdout_fd >= 0 && o.stdout_fd != 1 && ::dup2(o.stdout_fd, 1) < 0) child_fail(plan.report_fd, errno);
  if (o.stderr_fd >= 0 && o.stderr_fd != 2 && ::dup2(o.stderr_fd, 2) < 0) child_fail(plan.report_fd, errno);
  // Every fd above 2 closes on exec except those listed.
  if (platform::cloexec_from(3) != 0) {
    for (int fd = 3; fd < plan.max_fd; ++fd) {
      int fl = ::fcntl(fd, F_GETFD);
      if (fl >= 0 && !(fl & FD_CLOEXEC)) ::fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
    }
  }
  for (int fd : o.keep_fds) {
    int fl = ::fcntl(fd, F_GETFD);
    if (fl >= 0) ::fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC);
  }
  if (o.umask) ::umask(*o.umask);
  if (o.no_new_privs) {
    if (int e = platform::forbid_new_privileges()) child_fail(plan.report_fd, e);
  }
  if (plan.cwd && ::chdir(plan.cwd) != 0) child_fail(plan.report_fd, errno);
  ::execve(plan.exe, plan.argv, plan.envp);
  child_fail(plan.report_fd, errno);
}

// Forks and execs; returns the pid once exec has succeeded. For a detached
// start the pid is not our child; otherwise the caller owns it.
ProcessId start_process(const std::vector<std::string>& argv_in, const SpawnOptions& opts) {
  if (argv_in.empty()) throw Error("spawn: empty argv");
  std::string exe_s = argv_in[0];
  if (exe_s.find('/') == std::string::npos) {
    auto exe = find_program(exe_s);
    if (!exe)
      throw Error("cannot run " + argv_in[0] + ": not found in PATH",
                  "install it, or add the folder that holds it to PATH");
    exe_s = exe->string();
  }
  std::vector<std::string> argv = argv_in;
  std::vector<std::string> env = opts.exact_env ? opts.env : merged_env(opts.env);
  auto cargv = cstrs(argv);
  auto cenv = cstrs(env);
  std::string cwd = opts.cwd.string();
  Fd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!devnull) throw_errno("cannot open /dev/null");
  Pipe report = make_pipe();
  long max_fd = ::sysconf(_SC_OPEN_MAX);
  ChildPlan plan{exe_s.c_str(), cargv.data(), cenv.data(), cwd.empty() ? nullptr : cwd.c_str(),
                 report.w.get(), devnull.get(),
                 static_cast<int>(std::clamp<long>(max_fd, 256, 1 << 16)), &opts};

  pid_t pid = ::fork();
  if (pid < 0) throw_errno("fork");
  if (pid == 0) run_child(plan);
  report.w.reset();

  Child owner;  // kills and reaps a direct child if we throw
  if (opts.detach) {
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    pid = -1;
    if (read_full(report.r.get(), &pid, sizeof pid) != sizeof pid)
      throw Error("could not start " + argv_in[0] + " (fork failed)", "check the limit on processes (ulimit -u)");
  } else {
    owner = Child(pid);
    // The child does the same; whichever runs first makes it a group
    // leader before anyone signals the group.
    if (!opts.new_session && opts.own_group) ::setpgid(pid, pid);
  }
  int err = 0;
  if (read_full(report.r.get(), &err, sizeof err) == sizeof err)
    throw_errno("cannot run " + exe_s, err);
  ProcessId id{pid, proc_start_time(pid).value_or(0)};
  owner.release();
  return id;
}

}  // namespace

Child spawn(const std::vector<std::string>& argv, const SpawnOptions& opts) {
  if (opts.detach) throw Error("spawn: a detached process has no owner; use spawn_detached");
  return Child(start_process(argv, opts).pid);
}

ProcessId spawn_detached(const std::vector<std::string>& argv, SpawnOptions opts) {
  opts.detach = true;
  return start_process(argv, opts);
}

RunResult run(const std::vector<std::string>& argv, const RunOptions& opts) {
  Pipe out = make_pipe(), err = make_pipe(), in = make_pipe();
  SpawnOptions so;
  so.cwd = opts.cwd;
  so.env = opts.env;
  so.stdin_fd = in.r.get();
  so.stdout_fd = out.w.get();
  so.stderr_fd = opts.merge_stderr ? out.w.get() : err.w.get();
  Child child = spawn(argv, so);
  pid_t pid = child.pid();
  out.w.reset();
  err.w.reset();
  in.r.reset();
  Fd out_r = std::move(out.r), err_r = std::move(err.r), in_w = std::move(in.w);
  for (const Fd* f : {&out_r, &err_r, &in_w}) ::fcntl(f->get(), F_SETFL, O_NONBLOCK);
  // Its exit wakes the poll below; it is seen, not reaped, so the pid (and
  // the process group named after it) stays ours until the end.
  Fd exit_fd = platform::exit_watch(pid);

  RunResult res;
  std::string_view input = opts.input;
  if (input.empty()) in_w.reset();
  using Clock = steady_clock;
  auto deadline = opts.timeout ? std::optional(Clock::now() + *opts.timeout) : std::nullopt;
  std::optional<Clock::time_point> drain_until;  // set once the child is gone or killed
  auto stop_reading_in = [&](milliseconds grace) {
    auto t = Clock::now() + grace;
    if (!drain_until || t < *drain_until) drain_until = t;
  };
  bool exited = false;
  char buf[65536];
  auto read_some = [&](Fd& f, std::string& dst) {
    for (;;) {
      ssize_t m = ::read(f.get(), buf, sizeof buf);
      if (m > 0) {
        dst.append(buf, static_cast<size_t>(m));
        continue;
      }
      if (m < 0 && errno == EINTR) continue;
      if (m == 0 || errno != EAGAIN) f.reset();
      return;
    }
  };

  while (out_r || err_r || !exited) {
    auto now = Clock::now();
    if (deadline && now >= *deadline) {
      child.kill_group(SIGKILL);
      deadline.reset();
      in_w.reset();
      stop_reading_in(opts.grace);
    }
    if (drain_until && now >= *drain_until) break;
    std::vector<pollfd> fds;
    if (out_r) fds.push_back({out_r.get(), POLLIN, 0});
    if (err_r) fds.push_back({err_r.get(), POLLIN, 0});
    if (in_w) fds.push_back({in_w.get(), POLLOUT, 0});
    if (exit_fd && !exited) fds.push_back({exit_fd.get(), POLLIN, 0});
    long long wait_ms = -1;
    auto until = [&](Clock::time_point t) {
      long long ms = duration_cast<milliseconds>(t - now).count() + 1;
      if (wait_ms < 0 || ms < wait_ms) wait_ms = ms;
    };
    if (deadline) until(*deadline);
    if (drain_until) until(*drain_until);
    if (!exit_fd && !exited) until(now + milliseconds(50));  // no exit watch: look now and then
    int r = ::poll(fds.data(), fds.size(), static_cast<int>(wait_ms));
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
      } else if (out_r && p.fd == out_r.get()) {
        read_some(out_r, res.out);
      } else if (err_r && p.fd == err_r.get()) {
        read_some(err_r, res.err);
      }
    }
    if (!exited) {
      siginfo_t info{};
      if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
          info.si_pid == pid) {
        exited = true;
        stop_reading_in(opts.grace);
      }
    }
  }
  // What is already in the pipes is the child's; nothing more is awaited.
  if (out_r) read_some(out_r, res.out);
  if (err_r) read_some(err_r, res.err);
  if (!exited) child.kill_group(SIGKILL);
  res.exit_code = child.wait();
  return res;
}

Child::Child(Child&& o) noexcept : pid_(std::exchange(o.pid_, -1)) {}
Child& Child::operator=(Child&& o) noexcept {
  if (this != &o) {
    kill_and_reap();
    pid_ = std::exchange(o.pid_, -1);
  }
  return *this;
}
Child::~Child() { kill_and_reap(); }
void Child::kill_and_reap() noexcept {
  if (pid_ <= 0) return;
  // Not reaped yet, so no other process can hold its pid or group id.
  ::kill(-pid_, SIGKILL);
  ::kill(pid_, SIGKILL);
  int st;
  while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
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
void Child::kill_group(int sig) {
  if (pid_ <= 0) return;
  if (::kill(-pid_, sig) != 0) ::kill(pid_, sig);  // not a group leader (Child(pid) of a plain fork)
}

}  // namespace avm
