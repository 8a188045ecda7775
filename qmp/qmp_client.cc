#include "qmp/qmp_client.h"

#include "qmp/fields.h"
#include "qmp/framer.h"
#include "qmp/message.h"
#include "qmp/transport.h"

namespace avm::qmp {

namespace json = boost::json;

namespace {

constexpr const char* kBusyHint =
    "QEMU serves one QMP client per socket at a time: is another client "
    "(agent-vm, socat) connected to it? Otherwise QEMU may be hung";
constexpr const char* kClosedHint =
    "QEMU has exited (or dropped the monitor); the VM's log says why";

}  // namespace

struct QmpClient::Impl {
  explicit Impl(Transport t) : transport(std::move(t)) {}

  Transport transport;
  Framer framer{FramerOptions{}};
  EventBuffer events;
  std::optional<Greeting> greeting;
  std::uint64_t next_id = 1;
  std::optional<std::uint64_t> pending;  // the id of the command in flight
  std::optional<Reply> reply;            // its reply, once here
  std::optional<std::string> broken;     // why the stream is not trusted
  bool closed = false;                   // the peer closed (or we did, when broken)
  bool truncated = false;                // ... in the middle of a message
  std::optional<std::string> idless;     // an error reply QEMU could not tie to an id
  std::string rbuf;
  std::vector<Frame> frames;

  std::string where() const { return transport.path().string(); }

  void mark_broken(std::string why) {
    broken = "malformed data on the QMP socket " + where() + ": " + why;
    transport.close();
  }

  void route(Frame& f) {
    if (f.kind == Frame::Kind::Error) return mark_broken(f.error);
    if (f.kind == Frame::Kind::Sentinel) return;  // not in QMP mode
    Message m;
    try {
      m = classify(std::move(f.value));
    } catch (const ProtocolError& e) {
      return mark_broken(e.what());
    }
    if (!greeting) {
      if (m.kind != Message::Kind::Greeting)
        return mark_broken("expected the QMP greeting first; is this a QMP socket?");
      try {
        greeting = json::value_to<Greeting>(m.greeting);
      } catch (const ProtocolError& e) {
        mark_broken(e.what());
      }
      return;
    }
    switch (m.kind) {
      case Message::Kind::Greeting:
        return mark_broken("a second greeting");
      case Message::Kind::Event:
        events.push(std::move(m.event));
        return;
      case Message::Kind::Reply:
        if (pending && m.reply.our_id() == pending) {
          reply = std::move(m.reply);
        } else if (!m.reply.id && !m.reply.ok) {
          idless = m.reply.error_class + ": " + m.reply.error_desc;
        }
        // Otherwise a late reply to a command that timed out: dropped, so
        // it can never be taken for another command's.
        return;
    }
  }

  // Reads and routes messages until done() or the deadline. False when it
  // stopped for any other reason (timeout, close, garbage).
  template <class Done>
  bool pump(Done done, Clock::time_point deadline) {
    while (!done()) {
      if (broken || closed) return false;
      rbuf.clear();
      auto r = transport.read_some(rbuf, deadline);
      if (r == Transport::Read::Timeout) return false;
      if (r == Transport::Read::Closed) {
        closed = true;
        truncated = framer.mid_message();
        transport.close();
        return done();
      }
      frames.clear();
      framer.feed(rbuf, frames);
      for (auto& f : frames) {
        route(f);
        if (broken) break;
      }
    }
    return true;
  }

  // Throws the error that explains why a wait for `what` ended empty.
  [[noreturn]] void fail(const std::string& what, Clock::time_point start,
                         const char* timeout_hint = nullptr) {
    if (broken) throw ProtocolError(*broken + " (while waiting for " + what + ")",
                                    "QEMU does not send such data: is this socket QEMU's QMP monitor?");
    if (closed)
      throw ClosedError("the QMP connection " + where() + " closed while waiting for " + what +
                            (truncated ? " (in the middle of a message)" : ""),
                        kClosedHint);
    std::string extra;
    if (idless) extra = " (QEMU sent an error without an id: " + *idless + ")";
    throw TimeoutError(what + " on " + where() + extra, elapsed_since(start),
                       timeout_hint ? timeout_hint : "QEMU may be hung, or busy: pass a longer timeout");
  }

  void check_usable(const std::string& what) {
    if (broken) throw ProtocolError(*broken, "reconnect to the QMP socket");
    if (closed) throw ClosedError("cannot send '" + what + "': the QMP connection " + where() + " is closed",
                                  kClosedHint);
  }

  void send(const std::string& command, const json::object& args, std::uint64_t id,
            Clock::time_point deadline) {
    std::string request = make_request(command, args, id);
    request += "\n";
    try {
      transport.write(request, deadline);
    } catch (const ClosedError&) {
      // QEMU is gone; take in what it sent before it went (SHUTDOWN...).
      pump([&] { return closed; }, deadline);
      closed = true;
      transport.close();
      throw ClosedError("'" + command + "': the QMP connection " + where() + " closed", kClosedHint);
    } catch (const TimeoutError& e) {
      closed = true;  // the transport closed itself: a partial write is unusable
      throw TimeoutError("QEMU to read '" + command + "' on " + where(), e.waited(),
                         "QEMU is not reading its monitor: it may be hung");
    }
  }

  json::value execute(std::string_view command_sv, const json::object& args, Ms timeout) {
    std::string command(command_sv);
    auto start = Clock::now();
    auto deadline = start + timeout;
    check_usable(command);
    std::uint64_t id = next_id++;
    pending = id;
    reply.reset();
    idless.reset();
    send(command, args, id, deadline);
    bool ok = pump([&] { return reply.has_value(); }, deadline);
    pending.reset();
    if (!ok) fail("the reply to '" + command + "'", start);
    Reply r = std::move(*reply);
    reply.reset();
    return result_or_throw(std::move(r), command, "QEMU");
  }
};

QmpClient::QmpClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
QmpClient::QmpClient(QmpClient&&) noexcept = default;
QmpClient& QmpClient::operator=(QmpClient&&) noexcept = default;
QmpClient::~QmpClient() = default;

QmpClient QmpClient::connect(const std::filesystem::path& socket, Ms timeout) {
  auto start = Clock::now();
  auto deadline = start + timeout;
  auto impl = std::make_unique<Impl>(Transport::connect(socket, deadline, "QMP socket"));
  if (!impl->pump([&] { return impl->greeting.has_value(); }, deadline))
    impl->fail("the QMP greeting", start, kBusyHint);
  impl->execute("qmp_capabilities", {}, remaining(deadline));
  return QmpClient(std::move(impl));
}

const Greeting& QmpClient::greeting() const { return *impl_->greeting; }
const std::filesystem::path& QmpClient::socket() const { return impl_->transport.path(); }

json::value QmpClient::execute(std::string_view command, json::object args, Ms timeout) {
  return impl_->execute(command, args, timeout);
}

namespace {

template <class T>
T typed(std::string_view command, const json::value& v) {
  return with_context(command, [&] { return json::value_to<T>(v); });
}

template <class T>
std::vector<T> typed_list(std::string_view command, const json::value& v) {
  return with_context(command, [&] {
    if (!v.is_array()) throw ProtocolError(std::string("reply is ") + kind_name(v) + ", not an array");
    std::vector<T> out;
    for (const auto& item : v.get_array()) out.push_back(json::value_to<T>(item));
    return out;
  });
}

void expect_empty(std::string_view command, const json::value& v) {
  // QEMU answers {} to commands without a result; anything else is tolerated
  // (a newer QEMU may add a result) but must at least be an object.
  with_context(command, [&] {
    if (!v.is_object()) throw ProtocolError(std::string("reply is ") + kind_name(v) + ", not an object");
    return 0;
  });
}

}  // namespace

StatusInfo QmpClient::query_status(Ms t) { return typed<StatusInfo>("query-status", execute("query-status", {}, t)); }
VersionInfo QmpClient::query_version(Ms t) { return typed<VersionInfo>("query-version", execute("query-version", {}, t)); }
NameInfo QmpClient::query_name(Ms t) { return typed<NameInfo>("query-name", execute("query-name", {}, t)); }
KvmInfo QmpClient::query_kvm(Ms t) { return typed<KvmInfo>("query-kvm", execute("query-kvm", {}, t)); }

std::vector<ChardevInfo> QmpClient::query_chardev(Ms t) {
  return typed_list<ChardevInfo>("query-chardev", execute("query-chardev", {}, t));
}

std::vector<ObjectProperty> QmpClient::qom_list(std::string_view path, Ms t) {
  return typed_list<ObjectProperty>("qom-list", execute("qom-list", to_args(QomListArgs{std::string(path)}), t));
}

json::value QmpClient::qom_get(std::string_view path, std::string_view property, Ms t) {
  return execute("qom-get", to_args(QomGetArgs{std::string(path), std::string(property)}), t);
}

json::array QmpClient::query_qmp_schema(Ms t) {
  json::value v = execute("query-qmp-schema", {}, t);
  if (!v.is_array()) throw ProtocolError("query-qmp-schema: reply is " + std::string(kind_name(v)) + ", not an array");
  return std::move(v.get_array());
}

void QmpClient::system_powerdown(Ms t) { expect_empty("system_powerdown", execute("system_powerdown", {}, t)); }
void QmpClient::system_reset(Ms t) { expect_empty("system_reset", execute("system_reset", {}, t)); }
void QmpClient::stop(Ms t) { expect_empty("stop", execute("stop", {}, t)); }
void QmpClient::cont(Ms t) { expect_empty("cont", execute("cont", {}, t)); }

void QmpClient::quit(Ms timeout) {
  Impl& m = *impl_;
  auto start = Clock::now();
  auto deadline = start + timeout;
  m.check_usable("quit");
  std::uint64_t id = m.next_id++;
  m.pending = id;
  m.reply.reset();
  try {
    m.send("quit", {}, id, deadline);
  } catch (const ClosedError&) {
    return;  // QEMU went away between our last read and this write: it quit
  }
  // QEMU may close the socket before we read its reply: both mean it quits.
  bool ok = m.pump([&] { return m.reply.has_value() || m.closed; }, deadline);
  m.pending.reset();
  if (m.reply) {
    Reply r = std::move(*m.reply);
    m.reply.reset();
    expect_empty("quit", result_or_throw(std::move(r), "quit", "QEMU"));
    return;
  }
  if (m.closed && !m.broken) return;
  if (!ok) m.fail("the reply to 'quit'", start);
}

void QmpClient::device_add(const DeviceAddArgs& args, Ms t) {
  expect_empty("device_add", execute("device_add", to_args(args), t));
}

void QmpClient::device_del(std::string_view id, Ms t) {
  expect_empty("device_del", execute("device_del", to_args(DeviceDelArgs{std::string(id)}), t));
}

std::string QmpClient::human_monitor_command(std::string_view command_line, Ms t) {
  json::value v = execute("human-monitor-command", to_args(HumanMonitorArgs{std::string(command_line), {}}), t);
  if (!v.is_string())
    throw ProtocolError("human-monitor-command: reply is " + std::string(kind_name(v)) + ", not a string");
  return std::string(v.get_string());
}

namespace {

std::string chomp(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// HMP reports failure as text, not as an error reply. hostfwd_add prints
// nothing when it works; hostfwd_remove prints "host forwarding rule for
// <rule> removed" (or "... not found").
void hmp_check(std::string_view hmp, const std::string& out, std::string_view success_suffix) {
  std::string msg = chomp(out);
  if (success_suffix.empty() ? msg.empty() : msg.ends_with(success_suffix)) return;
  throw CommandError(std::string(hmp), "HmpError", msg.empty() ? "no output" : msg);
}

std::string hostfwd_line(std::string_view verb, std::string_view netdev, std::string_view rule) {
  std::string line(verb);
  if (!netdev.empty()) {
    line += " ";
    line += netdev;
  }
  line += " ";
  line += rule;
  return line;
}

}  // namespace

void QmpClient::hostfwd_add(std::string_view netdev_id, std::string_view rule, Ms t) {
  hmp_check("hostfwd_add", human_monitor_command(hostfwd_line("hostfwd_add", netdev_id, rule), t), "");
}

void QmpClient::hostfwd_remove(std::string_view netdev_id, std::string_view rule, Ms t) {
  hmp_check("hostfwd_remove", human_monitor_command(hostfwd_line("hostfwd_remove", netdev_id, rule), t),
            " removed");
}

EventCursor QmpClient::cursor() const { return impl_->events.cursor(); }

std::optional<Event> QmpClient::wait_event(std::string_view name, EventCursor from, Ms timeout,
                                           EventPredicate pred) {
  Impl& m = *impl_;
  auto start = Clock::now();
  auto deadline = start + timeout;
  std::string what = name.empty() ? std::string("an event") : "the event " + std::string(name);
  for (;;) {
    if (auto e = m.events.find(name, from, pred)) return e;
    if (m.broken || m.closed) m.fail(what, start);
    if (Clock::now() >= deadline) return std::nullopt;
    EventCursor last = m.events.cursor();
    m.pump([&] { return m.events.cursor() != last; }, deadline);
  }
}

std::vector<Event> QmpClient::events_since(EventCursor from) const { return impl_->events.since(from); }

bool QmpClient::drain() {
  Impl& m = *impl_;
  m.pump([] { return false; }, Clock::now());
  if (m.broken) m.fail("events", Clock::now());
  return !m.closed;
}

bool QmpClient::wait_closed(Ms timeout) {
  Impl& m = *impl_;
  auto start = Clock::now();
  m.pump([&] { return m.closed; }, start + timeout);
  if (m.broken) m.fail("QEMU to close the connection", start);
  return m.closed;
}

bool QmpClient::closed() const { return impl_->closed; }

}  // namespace avm::qmp
