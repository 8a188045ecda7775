#include "launcher/qemu_process.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "util/error.h"
#include "util/fd.h"
#include "util/file.h"
#include "util/process.h"
#include "util/strings.h"

namespace avm::launcher {

namespace fs = std::filesystem;

namespace {

std::vector<std::string> cmdline_of(pid_t pid) {
  std::optional<std::string> raw;
  try {
    raw = read_file_if_exists("/proc/" + std::to_string(pid) + "/cmdline");
  } catch (const Error&) {
    return {};
  }
  if (!raw || raw->empty()) return {};
  if (raw->back() == '\0') raw->pop_back();
  return split(*raw, '\0');
}

bool has_name(const std::vector<std::string>& argv, const std::string& vm_name) {
  for (size_t i = 0; i + 1 < argv.size(); ++i)
    if (argv[i] == "-name" && (argv[i + 1] == vm_name || starts_with(argv[i + 1], vm_name + ",")))
      return true;
  return false;
}

}  // namespace

std::vector<std::string> vm_environment() {
  std::vector<std::string> env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"};
  for (const char* k : {"LANG", "LC_ALL", "TZ"})
    if (const char* v = std::getenv(k)) env.push_back(std::string(k) + "=" + v);
  return env;
}

DetachedProcess start_detached(const std::vector<std::string>& argv, const fs::path& log,
                               const std::vector<int>& inherit, const std::vector<std::string>& env_in) {
  if (argv.empty()) throw Error("start_detached: empty argv");
  auto exe = find_program(argv[0]);
  if (!exe) throw Error("cannot run " + argv[0] + ": not found in PATH",
                        "install it (QEMU: sudo apt-get install qemu-system-x86)");
  Fd logfd(::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!logfd) throw_errno("cannot open " + log.string());
  Fd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));

  // Everything exec needs is prepared before fork: only async-signal-safe
  // calls happen in the children.
  std::vector<std::string> args = argv;
  std::vector<char*> cargv;
  for (auto& a : args) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  std::string exe_s = exe->string();
  std::vector<std::string> env = env_in;
  std::vector<char*> cenv;
  for (auto& e : env) cenv.push_back(e.data());
  cenv.push_back(nullptr);

  // The grandchild reports its pid, then exec's success (EOF via CLOEXEC) or
  // failure (an errno), through this pipe.
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) throw_errno("pipe");
  Fd rd(p[0]), wr(p[1]);

  pid_t child = ::fork();
  if (child < 0) throw_errno("fork");
  if (child == 0) {
    ::setsid();
    pid_t grandchild = ::fork();
    if (grandchild != 0) ::_exit(grandchild < 0 ? 1 : 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int s : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGCHLD, SIGWINCH}) ::signal(s, SIG_DFL);
    pid_t me = ::getpid();
    if (::write(wr.get(), &me, sizeof me) != sizeof me) ::_exit(127);
    ::dup2(devnull.get(), 0);
    ::dup2(logfd.get(), 1);
    ::dup2(logfd.get(), 2);
    for (int fd : inherit) {
      int fl = ::fcntl(fd, F_GETFD);
      if (fl >= 0) ::fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC);
    }
    ::umask(077);
    // Nothing it runs may gain privileges through exec (setuid programs).
    ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    ::execve(exe_s.c_str(), cargv.data(), cenv.data());
    int err = errno;
    ssize_t w = ::write(wr.get(), &err, sizeof err);
    (void)w;
    ::_exit(127);
  }
  wr.reset();
  int st = 0;
  while (::waitpid(child, &st, 0) < 0 && errno == EINTR) {
  }
  pid_t pid = -1;
  ssize_t n;
  do {
    n = ::read(rd.get(), &pid, sizeof pid);
  } while (n < 0 && errno == EINTR);
  if (n != sizeof pid) throw Error("could not start " + argv[0] + " (fork failed)");
  int err = 0;
  do {
    n = ::read(rd.get(), &err, sizeof err);
  } while (n < 0 && errno == EINTR);
  if (n == sizeof err) throw_errno("cannot run " + exe_s, err);

  DetachedProcess d;
  d.pid = pid;
  d.start_time = proc_start_time(pid).value_or(0);
  return d;
}

bool is_vm_process(pid_t pid, const std::string& vm_name,
                   std::optional<unsigned long long> start_time) {
  if (pid <= 1 || !proc_alive(pid)) return false;
  if (start_time && *start_time != 0 && proc_start_time(pid) != start_time) return false;
  return has_name(cmdline_of(pid), vm_name);
}

std::vector<pid_t> find_vm_processes(const std::string& vm_name) {
  std::vector<pid_t> out;
  DIR* d = ::opendir("/proc");
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
    if (proc_alive(pid) && has_name(cmdline_of(pid), vm_name)) out.push_back(pid);
  }
  ::closedir(d);
  return out;
}

}  // namespace avm::launcher
