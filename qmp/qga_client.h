// A guest agent (QGA) client over QEMU's chardev socket. The same framing
// as QMP, plus the guest-sync-delimited handshake: the agent's stream may
// hold stale replies (from an earlier client, or from a command that timed
// out) and the agent may not be running yet, so every session of use
// starts with a sync that discards everything before the 0xFF sentinel and
// the reply carrying a fresh id.
//
//   auto qga = QgaClient::connect(run / "qga.sock", Ms(3000));
//   qga.sync(Ms(60000));           // waits for the agent to come up
//   auto r = qga.exec({"uname", "-r"}, Ms(10000));
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qmp/clock.h"
#include "qmp/errors.h"
#include "qmp/qga_types.h"

namespace avm::qmp {

class QgaClient {
 public:
  // Connects (QEMU's chardev accepts even before the guest agent runs).
  // Sends nothing: the first command (or sync()) does the handshake.
  static QgaClient connect(const std::filesystem::path& socket, Ms timeout);
  QgaClient(QgaClient&&) noexcept;
  QgaClient& operator=(QgaClient&&) noexcept;
  ~QgaClient();

  // guest-sync-delimited with a fresh id, preceded by 0xFF (which flushes
  // the agent's parser); resent with a new id at growing intervals until
  // the agent answers or the deadline passes (TimeoutError). Discards
  // whatever came before the answer. ClosedError if the socket closes.
  void sync(Ms timeout);
  // False after a timeout or garbage, until the next sync.
  bool synced() const;

  // Sends one command and waits for its reply (matched by id). Syncs first
  // when not in sync (after connect, a timeout, or garbage), within the
  // same timeout. Throws CommandError, TimeoutError, ClosedError, ProtocolError.
  boost::json::value execute(std::string_view command, boost::json::object args = {},
                             Ms timeout = Ms(5000));

  void ping(Ms timeout = Ms(3000));
  GuestInfo info(Ms timeout = Ms(5000));
  OsInfo osinfo(Ms timeout = Ms(5000));
  // The guest's wall clock, in nanoseconds since the epoch.
  std::int64_t get_time(Ms timeout = Ms(5000));
  // guest-set-time: steps the guest's wall clock to `ns` since the epoch
  // (qemu-ga then writes it to the RTC with hwclock).
  void set_time(std::int64_t ns, Ms timeout = Ms(5000));

  // guest-exec, then guest-exec-status until the process exits or the
  // deadline passes (TimeoutError naming the program and its guest pid; it
  // keeps running). Output is captured and decoded. guest-exec-status has
  // no notification, so it is polled (10 ms, doubling to 250 ms).
  ExecResult exec(const std::vector<std::string>& argv, Ms timeout,
                  const std::vector<std::string>& env = {}, std::string_view input = {});
  // A whole (small) file from the guest: guest-file-open, -read until EOF,
  // -close. nullopt when the agent cannot open it (missing, not allowed);
  // ProtocolError when it is larger than `max_bytes`.
  std::optional<std::string> read_file(std::string_view path, Ms timeout,
                                       std::size_t max_bytes = 1 << 20);

  // The two halves, for callers that poll themselves.
  std::int64_t exec_start(const GuestExecArgs& args, Ms timeout = Ms(5000));
  ExecStatus exec_status(std::int64_t pid, Ms timeout = Ms(5000));

  // guest-shutdown ("powerdown", "halt" or "reboot"). The agent does not
  // reply when it works (the guest goes down), only when it refuses: waits
  // up to `refusal_wait` for a refusal (CommandError), then returns.
  // Confirm with QMP's SHUTDOWN event.
  void shutdown(std::string_view mode = "powerdown", Ms refusal_wait = Ms(1000));

  // Commands that send no reply when they succeed (guest-shutdown,
  // guest-suspend-*): the guest goes away instead.
  static bool replies_on_success(std::string_view command);
  // Sends such a command; waits up to `refusal_wait` for a refusal
  // (CommandError) and otherwise returns (the agent then needs a resync).
  void execute_no_reply(std::string_view command, boost::json::object args = {},
                        Ms refusal_wait = Ms(1000));

  const std::filesystem::path& socket() const;
  // Replies dropped because they answered nothing in flight (stale).
  std::uint64_t stale_replies() const;

 private:
  struct Impl;
  explicit QgaClient(std::unique_ptr<Impl>);
  std::unique_ptr<Impl> impl_;
};

}  // namespace avm::qmp
