// A QMP client: connect, greeting, capabilities, typed commands, and every
// event buffered from the moment the socket opens. Synchronous, one per
// thread (each owns its I/O), a deadline on every call.
//
//   auto qmp = QmpClient::connect(run / "qmp.sock", Ms(3000));
//   EventCursor mark = qmp.cursor();          // subscribe before you act
//   qmp.system_powerdown();
//   auto ev = qmp.wait_event("SHUTDOWN", mark, Ms(60000));
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qmp/clock.h"
#include "qmp/errors.h"
#include "qmp/events.h"
#include "qmp/qmp_types.h"

namespace avm::qmp {

class QmpClient {
 public:
  // Connects to the unix socket, reads the greeting and negotiates
  // capabilities, all within `timeout`. Throws ConnectError, TimeoutError
  // (QEMU serves one client per socket: a second one gets no greeting),
  // ClosedError or ProtocolError.
  //
  // Commands in `ahead` (none takes arguments) go in the same write as
  // qmp_capabilities, and their replies are awaited with its reply: a
  // client that asks a few things once (agent-list asks every VM
  // query-status and query-chardev) wakes QEMU's monitor once for them all
  // instead of once each. The first execute() of each such command, typed
  // or not, answers from its reply, an error reply included.
  static QmpClient connect(const std::filesystem::path& socket, Ms timeout,
                           const std::vector<std::string>& ahead = {});
  QmpClient(QmpClient&&) noexcept;
  QmpClient& operator=(QmpClient&&) noexcept;
  ~QmpClient();

  const Greeting& greeting() const;
  const std::filesystem::path& socket() const;

  // Sends one command and waits for the reply carrying its id. Returns the
  // "return" value. Throws CommandError (an error reply), TimeoutError,
  // ClosedError (QEMU exited), ProtocolError (garbage; the connection is
  // then closed). Events that arrive meanwhile are buffered.
  boost::json::value execute(std::string_view command, boost::json::object args = {},
                             Ms timeout = Ms(5000));

  // Typed commands.
  StatusInfo query_status(Ms timeout = Ms(5000));
  VersionInfo query_version(Ms timeout = Ms(5000));
  NameInfo query_name(Ms timeout = Ms(5000));
  KvmInfo query_kvm(Ms timeout = Ms(5000));
  std::vector<ChardevInfo> query_chardev(Ms timeout = Ms(5000));
  std::vector<ObjectProperty> qom_list(std::string_view path, Ms timeout = Ms(5000));
  boost::json::value qom_get(std::string_view path, std::string_view property,
                             Ms timeout = Ms(5000));
  // The whole schema (about 200 KiB from QEMU 7.2), unparsed beyond JSON.
  boost::json::array query_qmp_schema(Ms timeout = Ms(10000));
  void system_powerdown(Ms timeout = Ms(5000));  // ACPI power button
  void system_reset(Ms timeout = Ms(5000));
  void stop(Ms timeout = Ms(5000));
  void cont(Ms timeout = Ms(5000));
  // Asks QEMU to exit. Succeeds whether the reply or the close comes first
  // (QEMU may exit before its reply is read). Then wait_closed() or
  // wait_event("SHUTDOWN", ...) as needed.
  void quit(Ms timeout = Ms(5000));
  void device_add(const DeviceAddArgs& args, Ms timeout = Ms(5000));
  // Asks the guest to release the device; the DEVICE_DELETED event says it did.
  void device_del(std::string_view id, Ms timeout = Ms(5000));
  // An HMP command through QMP; returns its text output.
  std::string human_monitor_command(std::string_view command_line, Ms timeout = Ms(5000));
  // HMP hostfwd_add/hostfwd_remove on a user-mode netdev (empty netdev_id:
  // QEMU's first). add takes "tcp:127.0.0.1:2222-:22", remove the host side
  // "tcp:127.0.0.1:2222". HMP reports failure as text, which is thrown as a
  // CommandError of class "HmpError".
  void hostfwd_add(std::string_view netdev_id, std::string_view rule, Ms timeout = Ms(5000));
  void hostfwd_remove(std::string_view netdev_id, std::string_view rule, Ms timeout = Ms(5000));

  // Events. A cursor marks "now"; waits and queries see events after it.
  EventCursor cursor() const;
  // Waits for an event named `name` (any name when empty) that matches
  // `pred` (if given) with seq > from. nullopt on timeout. Throws
  // ClosedError if the connection closed before it came (an event that
  // arrived before the close is still returned) and ProtocolError on garbage.
  std::optional<Event> wait_event(std::string_view name, EventCursor from, Ms timeout,
                                  EventPredicate pred = {});
  // What is buffered after `from` (call drain() first to take in what has
  // arrived on the socket since the last call).
  std::vector<Event> events_since(EventCursor from) const;
  // Reads whatever has already arrived, without waiting. False when the
  // connection is closed.
  bool drain();
  // Waits until QEMU closes the connection (it exited). False on timeout.
  bool wait_closed(Ms timeout);
  bool closed() const;

 private:
  struct Impl;
  explicit QmpClient(std::unique_ptr<Impl>);
  std::unique_ptr<Impl> impl_;
};

}  // namespace avm::qmp
