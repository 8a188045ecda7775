#include "sessions/attach.h"

#include <fcntl.h>
#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <memory>
#include <vector>

#include "sessions/keys.h"
#include "util/error.h"
#include "util/fd.h"

namespace avm::sessions {

namespace fs = std::filesystem;

namespace {

// ---- libssh ownership ---------------------------------------------------------

struct SessionFree {
  void operator()(ssh_session s) const {
    if (ssh_is_connected(s)) ssh_disconnect(s);
    ssh_free(s);
  }
};
using SshSession = std::unique_ptr<std::remove_pointer_t<ssh_session>, SessionFree>;

struct ChannelFree {
  void operator()(ssh_channel c) const {
    if (ssh_channel_is_open(c)) ssh_channel_close(c);
    ssh_channel_free(c);
  }
};
using SshChannel = std::unique_ptr<std::remove_pointer_t<ssh_channel>, ChannelFree>;

struct KeyFree {
  void operator()(ssh_key k) const { ssh_key_free(k); }
};
using SshKey = std::unique_ptr<std::remove_pointer_t<ssh_key>, KeyFree>;

std::string fingerprint(ssh_key key) {
  unsigned char* hash = nullptr;
  size_t len = 0;
  if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &len) != 0) return "?";
  char* fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, len);
  ssh_clean_pubkey_hash(&hash);
  if (!fp) return "?";
  std::string s = fp;
  ssh_string_free_char(fp);
  return s;
}

// ---- signals and the terminal ---------------------------------------------------

// The self-pipe the handlers write to; the pump loop polls its read end.
int g_signal_pipe = -1;
// For restoring the terminal from a fatal signal's handler.
int g_raw_fd = -1;
struct termios g_saved_termios;
std::atomic<bool> g_attached{false};
// The signal that asked the attach to end, for code blocked in a write.
volatile sig_atomic_t g_stop_signal = 0;

void on_signal(int sig) {
  int saved = errno;
  if (sig != SIGWINCH) g_stop_signal = sig;
  if (g_signal_pipe >= 0) {
    unsigned char b = static_cast<unsigned char>(sig);
    ssize_t r = ::write(g_signal_pipe, &b, 1);
    (void)r;
  }
  errno = saved;
}

void on_fatal(int sig) {
  if (g_raw_fd >= 0) ::tcsetattr(g_raw_fd, TCSANOW, &g_saved_termios);
  ::raise(sig);  // SA_RESETHAND: the default action now
}

// Installs the handlers for the attach's lifetime and puts the old ones back.
class SignalScope {
 public:
  explicit SignalScope(int pipe_w) {
    g_signal_pipe = pipe_w;
    g_stop_signal = 0;
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    install(SIGWINCH, sa);
    // No SA_RESTART: a write blocked on a stuck terminal must give way.
    sa.sa_flags = 0;
    for (int s : {SIGTERM, SIGHUP, SIGINT, SIGQUIT}) install(s, sa);
    struct sigaction fatal {};
    fatal.sa_handler = on_fatal;
    sigemptyset(&fatal.sa_mask);
    fatal.sa_flags = SA_RESETHAND;
    for (int s : {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL}) install(s, fatal);
    struct sigaction ign {};
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    install(SIGPIPE, ign);
  }
  ~SignalScope() {
    for (auto& [sig, old] : saved_) ::sigaction(sig, &old, nullptr);
    g_signal_pipe = -1;
  }
  SignalScope(const SignalScope&) = delete;
  SignalScope& operator=(const SignalScope&) = delete;

 private:
  void install(int sig, const struct sigaction& sa) {
    struct sigaction old {};
    ::sigaction(sig, &sa, &old);
    saved_.emplace_back(sig, old);
  }
  std::vector<std::pair<int, struct sigaction>> saved_;
};

// Raw mode on a terminal for as long as it lives.
class RawMode {
 public:
  explicit RawMode(int fd) : fd_(fd) {
    if (::tcgetattr(fd, &saved_) != 0) throw_errno("cannot read the terminal settings");
    g_saved_termios = saved_;
    g_raw_fd = fd;
    struct termios raw = saved_;
    ::cfmakeraw(&raw);
    if (::tcsetattr(fd, TCSADRAIN, &raw) != 0) {
      g_raw_fd = -1;
      throw_errno("cannot put the terminal in raw mode");
    }
  }
  ~RawMode() {
    ::tcsetattr(fd_, TCSANOW, &saved_);  // not DRAIN: a stuck terminal must not hold us
    g_raw_fd = -1;
  }
  RawMode(const RawMode&) = delete;
  RawMode& operator=(const RawMode&) = delete;

 private:
  int fd_;
  struct termios saved_ {};
};

bool window_size(int fd, int& cols, int& rows) {
  struct winsize ws {};
  if (::isatty(fd) != 1 || ::ioctl(fd, TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0 || ws.ws_row == 0)
    return false;
  cols = ws.ws_col;
  rows = ws.ws_row;
  return true;
}

bool write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    if (g_stop_signal) return false;
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        pollfd pf{fd, POLLOUT, 0};
        ::poll(&pf, 1, -1);
        continue;
      }
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

std::string where(const AttachOptions& o) { return o.host + ":" + std::to_string(o.port); }

// ---- the phases -------------------------------------------------------------------

SshSession connect(const AttachOptions& o, ssh_key pinned) {
  SshSession s(ssh_new());
  if (!s) throw Error("cannot create an SSH session (libssh)");
  int port = o.port;
  long timeout = static_cast<long>(o.connect_timeout.count());
  int no = 0;
  const char* type = ssh_key_type_to_char(ssh_key_type(pinned));
  // Only our own settings: no ~/.ssh/config, no known_hosts files (the
  // session's pinned key is the only trust there is).
  ssh_options_set(s.get(), SSH_OPTIONS_PROCESS_CONFIG, &no);
  ssh_options_set(s.get(), SSH_OPTIONS_HOST, o.host.c_str());
  ssh_options_set(s.get(), SSH_OPTIONS_PORT, &port);
  ssh_options_set(s.get(), SSH_OPTIONS_USER, o.user.c_str());
  ssh_options_set(s.get(), SSH_OPTIONS_TIMEOUT, &timeout);
  ssh_options_set(s.get(), SSH_OPTIONS_KNOWNHOSTS, "/dev/null");
  ssh_options_set(s.get(), SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null");
  if (type) ssh_options_set(s.get(), SSH_OPTIONS_HOSTKEYS, type);
  if (ssh_connect(s.get()) != SSH_OK)
    throw Error("cannot connect to " + where(o) + ": " + ssh_get_error(s.get()),
                "is the session running? agent-list shows it; agent-resume starts it");

  ssh_key raw = nullptr;
  if (ssh_get_server_publickey(s.get(), &raw) != SSH_OK || !raw)
    throw Error("cannot read the host key of " + where(o) + ": " + ssh_get_error(s.get()));
  SshKey server(raw);
  if (ssh_key_cmp(server.get(), pinned, SSH_KEY_CMP_PUBLIC) != 0)
    throw Error("refusing to connect: the host key of " + where(o) + " (" + fingerprint(server.get()) +
                    ") is not the one pinned for this session (" + fingerprint(pinned) + ")",
                "another VM or program answers on that port; check agent-list for the session's "
                "port, and stop whatever else listens there");
  return s;
}

void authenticate(ssh_session s, const AttachOptions& o) {
  ssh_key raw = nullptr;
  if (ssh_pki_import_privkey_file(o.identity.c_str(), nullptr, nullptr, nullptr, &raw) != SSH_OK)
    throw Error("cannot read the session key " + o.identity.string(),
                "the session's ssh/ folder is damaged; it cannot be attached to");
  SshKey key(raw);
  int rc = ssh_userauth_publickey(s, nullptr, key.get());
  if (rc == SSH_AUTH_SUCCESS) return;
  if (rc == SSH_AUTH_ERROR)
    throw Error("cannot log in to " + where(o) + ": " + ssh_get_error(s));
  throw Error("the guest at " + where(o) + " refused the session key for user '" + o.user + "'",
              "its sshd must accept " + o.identity.string() + ".pub (ssh/authorized_keys)");
}

}  // namespace

AttachOptions attach_options(const fs::path& ssh_dir, std::uint16_t port) {
  KeyFiles k(ssh_dir);
  AttachOptions o;
  o.port = port;
  o.identity = k.client_key;
  o.pinned_host_key = k.host_pub;
  return o;
}

int attach(const AttachOptions& o) {
  if (o.port == 0) throw Error("the session has no SSH port", "is it running? agent-list shows it");
  bool expected = false;
  if (!g_attached.compare_exchange_strong(expected, true))
    throw Error("internal: one attach at a time per process");
  struct Release {
    ~Release() { g_attached = false; }
  } release;

  ssh_key pinned_raw = nullptr;
  if (ssh_pki_import_pubkey_file(o.pinned_host_key.c_str(), &pinned_raw) != SSH_OK || !pinned_raw)
    throw Error("cannot read the pinned host key " + o.pinned_host_key.string(),
                "the session's ssh/ folder is damaged; without it the guest cannot be trusted");
  SshKey pinned(pinned_raw);

  SshSession session = connect(o, pinned.get());
  authenticate(session.get(), o);

  SshChannel chan(ssh_channel_new(session.get()));
  if (!chan || ssh_channel_open_session(chan.get()) != SSH_OK)
    throw Error("cannot open a channel to " + where(o) + ": " + ssh_get_error(session.get()));

  // The remote's output is written out as libssh reads it, from whichever
  // call reads it: any libssh call may take packets off the socket, and data
  // left in libssh's buffers is invisible to the poll below (a hang, seen,
  // with the remote's last output, EOF and close all read and never shown).
  struct Sink {
    const AttachOptions* o;
    bool failed = false;
  } sink{&o};
  ssh_channel_callbacks_struct callbacks{};
  callbacks.userdata = &sink;
  callbacks.channel_data_function = [](ssh_session, ssh_channel, void* data, uint32_t len, int is_stderr,
                                       void* userdata) -> int {
    auto* k = static_cast<Sink*>(userdata);
    if (k->failed) return 0;
    if (!write_all(is_stderr ? k->o->err_fd : k->o->out_fd, static_cast<const char*>(data), len)) {
      k->failed = true;
      return 0;  // left in libssh's buffer; the loop ends
    }
    return static_cast<int>(len);
  };
  ssh_callbacks_init(&callbacks);
  if (ssh_set_channel_callbacks(chan.get(), &callbacks) != SSH_OK)
    throw Error("cannot set up the channel to " + where(o) + ": " + ssh_get_error(session.get()));

  const bool in_tty = ::isatty(o.in_fd) == 1;
  const bool want_pty =
      o.pty == AttachOptions::Pty::Always || (o.pty == AttachOptions::Pty::Auto && in_tty);
  int tty_for_size = in_tty ? o.in_fd : o.out_fd;
  if (want_pty) {
    int cols = 80, rows = 24;
    window_size(tty_for_size, cols, rows);
    const char* term = std::getenv("TERM");
    if (!term || !*term || std::string_view(term) == "dumb") term = "xterm-256color";
    if (ssh_channel_request_pty_size(chan.get(), term, cols, rows) != SSH_OK)
      throw Error("the guest refused a terminal: " + std::string(ssh_get_error(session.get())));
  }
  if (ssh_channel_request_exec(chan.get(), o.command.c_str()) != SSH_OK)
    throw Error("cannot run '" + o.command + "' on " + where(o) + ": " + ssh_get_error(session.get()));

  int pfd[2];
  if (::pipe2(pfd, O_CLOEXEC | O_NONBLOCK) != 0) throw_errno("pipe");
  Fd sig_r(pfd[0]), sig_w(pfd[1]);
  SignalScope signals(sig_w.get());
  std::unique_ptr<RawMode> raw;
  if (in_tty && want_pty) raw = std::make_unique<RawMode>(o.in_fd);

  bool stdin_open = true;
  int local_signal = 0;
  std::vector<char> buf(32 * 1024);
  for (;;) {
    // libssh sends a packet at once only when its last write did not fill the
    // socket; otherwise it keeps it for its own poll loop to send on POLLOUT.
    // Ours must do that part, or a window adjust (or the EOF) stays unsent
    // while both sides wait for the other.
    ssh_blocking_flush(session.get(), 0);
    // Let libssh read what the socket has (the output goes to the sink), and
    // pass on anything it still holds (the sink failed, or came in before it).
    bool failed = sink.failed;
    for (int is_stderr : {0, 1}) {
      while (!failed) {
        int n = ssh_channel_read_nonblocking(chan.get(), buf.data(), static_cast<uint32_t>(buf.size()),
                                             is_stderr);
        if (n == SSH_ERROR) failed = true;
        if (n <= 0) break;
        failed = !write_all(is_stderr ? o.err_fd : o.out_fd, buf.data(), static_cast<size_t>(n));
      }
    }
    failed = failed || sink.failed;
    if (g_stop_signal) {
      local_signal = g_stop_signal;
      break;
    }
    if (failed || ssh_channel_is_eof(chan.get()) || ssh_channel_is_closed(chan.get())) break;

    short sock_events = POLLIN;
    if (ssh_get_poll_flags(session.get()) & SSH_WRITE_PENDING) sock_events |= POLLOUT;

    pollfd fds[3];
    nfds_t n = 0;
    fds[n++] = {sig_r.get(), POLLIN, 0};
    fds[n++] = {ssh_get_fd(session.get()), sock_events, 0};
    if (stdin_open) fds[n++] = {o.in_fd, POLLIN, 0};
    // Interactive: no deadline on the user's session; the socket closing ends it.
    if (::poll(fds, n, -1) < 0) {
      if (errno == EINTR) continue;
      throw_errno("poll");
    }
    // Signals first: a resize must reach the remote before keys typed after it.
    if (fds[0].revents) {
      unsigned char sigs[64];
      ssize_t got;
      while ((got = ::read(sig_r.get(), sigs, sizeof sigs)) > 0) {
        for (ssize_t i = 0; i < got; ++i) {
          if (sigs[i] == SIGWINCH) {
            int cols, rows;
            if (want_pty && window_size(tty_for_size, cols, rows))
              ssh_channel_change_pty_size(chan.get(), cols, rows);
          } else {
            local_signal = sigs[i];
          }
        }
      }
      if (local_signal) break;
    }
    if (stdin_open && n == 3 && fds[2].revents) {
      ssize_t r = ::read(o.in_fd, buf.data(), buf.size());
      if (r > 0) {
        // libssh may write less than asked when the remote's window stays
        // shut past the session timeout: carry on with the rest.
        bool lost = false;
        for (ssize_t off = 0; off < r && !lost;) {
          int w = ssh_channel_write(chan.get(), buf.data() + off, static_cast<uint32_t>(r - off));
          if (w == SSH_ERROR || g_stop_signal || ssh_channel_is_closed(chan.get()))
            lost = true;
          else
            off += w;
        }
        if (lost) continue;  // the top of the loop sees why
      } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
        stdin_open = false;
        ssh_channel_send_eof(chan.get());
      }
    }
  }
  raw.reset();  // the terminal back before anything is printed
  if (local_signal) return 128 + local_signal;
  int status = ssh_channel_get_exit_status(chan.get());
  return status < 0 ? 255 : status;
}

}  // namespace avm::sessions
