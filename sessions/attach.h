// agent-attach's client (libssh): a terminal on the guest's tmux session.
// The host key must be the session's pinned key, checked before any
// authentication; login is by the session's own key only.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>

namespace avm::sessions {

struct AttachOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  std::string user = "agent";
  std::filesystem::path identity;         // the session's private key (ssh/id_ed25519)
  std::filesystem::path pinned_host_key;  // the guest's public host key (ssh/ssh_host_ed25519_key.pub)
  std::string command = "tmux attach -t agent";
  // Auto: a PTY (and raw mode) when `in_fd` is a terminal. Always: a PTY
  // even without a local terminal (80x24 unless `out_fd` is one).
  enum class Pty { Auto, Always, Never } pty = Pty::Auto;
  std::chrono::seconds connect_timeout{10};
  int in_fd = STDIN_FILENO;
  int out_fd = STDOUT_FILENO;
  int err_fd = STDERR_FILENO;
};

// Options for a session's ssh/ folder and forwarded port.
AttachOptions attach_options(const std::filesystem::path& ssh_dir, std::uint16_t port);

// Connects, checks the host key against the pinned one (a mismatch is
// refused with an avm::Error before any authentication), logs in with the
// identity, runs the command on a PTY of the local terminal's size and
// TERM, follows SIGWINCH, and pumps bytes until the remote side closes. The
// local terminal is in raw mode meanwhile and restored on every way out,
// signals included (SIGTERM, SIGHUP, SIGINT, SIGQUIT end the attach
// cleanly). Returns the remote exit status (255 when there was none, e.g.
// the remote was killed; 128+N when a signal N ended the attach locally).
// Throws avm::Error when it cannot connect or authenticate.
int attach(const AttachOptions& opts);

}  // namespace avm::sessions
