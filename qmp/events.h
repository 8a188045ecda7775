// QMP events: the buffer that keeps every event from the moment the socket
// opens, and typed views of the events the controller acts on.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace avm::qmp {

struct Event {
  std::uint64_t seq = 0;  // 1, 2, 3... in arrival order, per connection
  std::string name;       // "SHUTDOWN"
  boost::json::object data;  // empty when the event has none
  std::int64_t ts_seconds = 0, ts_micros = 0;  // QEMU's timestamp (host wall clock)
};

// "Events after this point". A cursor taken before an action sees every
// event the action causes, even one that arrives before the action's reply.
using EventCursor = std::uint64_t;

using EventPredicate = std::function<bool(const Event&)>;

// Parses {"event": ..., "data": ..., "timestamp": {...}}. Throws ProtocolError.
Event parse_event(const boost::json::object& message);

// Every event in arrival order, numbered. Bounded: past `capacity` the oldest
// are dropped (a client that streams events for days must not grow forever).
class EventBuffer {
 public:
  explicit EventBuffer(std::size_t capacity = 65536) : capacity_(capacity) {}
  // Numbers the event (seq = cursor() + 1) and keeps it.
  const Event& push(Event e);
  // The seq of the newest event (0 before any).
  EventCursor cursor() const noexcept { return last_; }
  // The first event after `from` named `name` (any name when empty) for
  // which `pred` (if set) is true.
  std::optional<Event> find(std::string_view name, EventCursor from,
                            const EventPredicate& pred = {}) const;
  std::vector<Event> since(EventCursor from) const;
  std::size_t size() const noexcept { return events_.size(); }
  std::uint64_t dropped() const noexcept { return dropped_; }

 private:
  std::size_t capacity_;
  std::deque<Event> events_;
  EventCursor last_ = 0;
  std::uint64_t dropped_ = 0;
};

// Typed events. Each from() checks the name and the fields it needs and
// throws ProtocolError naming the event and the field otherwise.

// SHUTDOWN: guest=true when the guest powered off (ACPI, reboot policy);
// reason: "host-qmp-quit", "guest-shutdown", "host-signal", ... (QEMU's
// ShutdownCause, kept as text so a newer QEMU's cause is not an error).
struct ShutdownEvent {
  bool guest = false;
  std::string reason;
  static ShutdownEvent from(const Event& e);
};

// RESET: same fields as SHUTDOWN (reason "host-qmp-system-reset", "guest-reset"...).
struct ResetEvent {
  bool guest = false;
  std::string reason;
  static ResetEvent from(const Event& e);
};

struct StopEvent {
  static StopEvent from(const Event& e);
};
struct ResumeEvent {
  static ResumeEvent from(const Event& e);
};
struct PowerdownEvent {
  static PowerdownEvent from(const Event& e);
};

// GUEST_PANICKED: action is "pause", "poweroff" or "run"; info is the
// hypervisor's panic details when it gives them.
struct GuestPanickedEvent {
  std::string action;
  std::optional<boost::json::object> info;
  static GuestPanickedEvent from(const Event& e);
};

// DEVICE_DELETED: the guest let go of a device after device_del.
struct DeviceDeletedEvent {
  std::optional<std::string> device;  // its id, when it had one
  std::string path;                   // its QOM path
  static DeviceDeletedEvent from(const Event& e);
};

// The event as QEMU sent it: {"event", "data"?, "timestamp"}, plus "seq".
boost::json::object to_json(const Event& e);

}  // namespace avm::qmp
