#include "qmp/qmp_client.h"

#include <algorithm>

#include "json/text.h"
#include "qmp/channel.h"
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

// QMP on the channel: the greeting first, then events (buffered) and
// replies (matched by id). Malformed data breaks the connection for good.
struct QmpClient::Impl final : Channel::Peer {
  explicit Impl(Transport t)
      : channel(std::move(t),
                {.framer = FramerOptions{},
                 .garbage_breaks = true,
                 .name = "QMP connection",
                 .closed_hint = kClosedHint,
                 .garbage_hint = "QEMU does not send such data: is this socket QEMU's QMP monitor?"},
                *this) {}

  Channel channel;
  EventBuffer events;
  std::optional<Greeting> greeting;
  std::optional<std::string> idless;  // an error reply QEMU could not tie to an id
  std::vector<std::pair<std::string, Reply>> answered;  // connect's `ahead`, not yet taken

  void message(Message& m) override {
    if (!greeting) {
      if (m.kind != Message::Kind::Greeting)
        return channel.poison("expected the QMP greeting first; is this a QMP socket?");
      try {
        greeting = json::value_to<Greeting>(m.greeting);
      } catch (const ProtocolError& e) {
        channel.poison(e.what());
      }
      return;
    }
    if (m.kind == Message::Kind::Greeting) return channel.poison("a second greeting");
    events.push(std::move(m.event));
  }

  bool take_unmatched(const Reply& r) override {
    if (!greeting) {
      channel.poison("expected the QMP greeting first; is this a QMP socket?");
      return false;
    }
    if (!r.id && !r.ok) idless = r.error_class + ": " + r.error_desc;
    return false;
  }

  [[noreturn]] void fail(Channel::Wait why, const std::string& what, Clock::time_point start,
                         const char* timeout_hint = nullptr) {
    std::string note;
    if (idless) note = " (QEMU sent an error without an id: " + *idless + ")";
    channel.fail(why, what, start, timeout_hint ? timeout_hint : "QEMU may be hung, or busy: pass a longer timeout",
                 note);
  }

  json::value execute(std::string_view command_sv, const json::object& args, Ms timeout) {
    std::string command(command_sv);
    auto start = Clock::now();
    auto deadline = start + timeout;
    if (args.empty()) {
      auto it = std::find_if(answered.begin(), answered.end(), [&](const auto& a) { return a.first == command; });
      if (it != answered.end()) {
        Reply r = std::move(it->second);
        answered.erase(it);
        return result_or_throw(std::move(r), command, "QEMU");
      }
    }
    channel.check_usable(command);
    std::uint64_t id = channel.fresh_id();
    idless.reset();
    channel.send(command, args, id, deadline);
    auto wait = channel.await_reply(id, deadline);
    if (wait != Channel::Wait::Reply) fail(wait, "the reply to '" + command + "'", start);
    return result_or_throw(channel.take_reply(), command, "QEMU");
  }
};

QmpClient::QmpClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
QmpClient::QmpClient(QmpClient&&) noexcept = default;
QmpClient& QmpClient::operator=(QmpClient&&) noexcept = default;
QmpClient::~QmpClient() = default;

QmpClient QmpClient::connect(const std::filesystem::path& socket, Ms timeout, const std::vector<std::string>& ahead) {
  auto start = Clock::now();
  auto deadline = start + timeout;
  auto impl = std::make_unique<Impl>(Transport::connect(socket, deadline, "QMP socket"));
  if (!impl->channel.pump([&] { return impl->greeting.has_value(); }, deadline))
    impl->fail(Channel::Wait::Timeout, "the QMP greeting", start, kBusyHint);
  if (ahead.empty()) {
    impl->execute("qmp_capabilities", {}, remaining(deadline));
    return QmpClient(std::move(impl));
  }
  // QEMU reads the requests in order: the capabilities first, so the rest
  // run in command mode.
  std::vector<Channel::Request> requests;
  std::vector<std::uint64_t> ids;
  requests.push_back({"qmp_capabilities", {}, {}});
  for (const auto& command : ahead) requests.push_back({command, {}, {}});
  for (auto& r : requests) ids.push_back(*(r.id = impl->channel.fresh_id()));
  impl->channel.send(requests, deadline);
  auto wait = impl->channel.await_replies(ids, deadline);
  if (wait != Channel::Wait::Reply) {
    std::size_t missing = 0;
    while (impl->channel.has_reply(missing)) ++missing;
    impl->fail(wait, "the reply to '" + requests[missing].command + "'", start);
  }
  result_or_throw(impl->channel.take_reply(0), "qmp_capabilities", "QEMU");
  for (std::size_t i = 0; i < ahead.size(); ++i) impl->answered.emplace_back(ahead[i], impl->channel.take_reply(i + 1));
  return QmpClient(std::move(impl));
}

const Greeting& QmpClient::greeting() const { return *impl_->greeting; }
const std::filesystem::path& QmpClient::socket() const { return impl_->channel.path(); }

json::value QmpClient::execute(std::string_view command, json::object args, Ms timeout) {
  return impl_->execute(command, args, timeout);
}

namespace {

void expect_empty(std::string_view command, const json::value& v) {
  // QEMU answers {} to commands without a result; anything else is tolerated
  // (a newer QEMU may add a result) but must at least be an object.
  with_context(command, [&] {
    if (!v.is_object()) throw ProtocolError(std::string("reply is ") + avm::json::kind_name(v) + ", not an object");
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
  if (!v.is_array()) throw ProtocolError("query-qmp-schema: reply is " + std::string(avm::json::kind_name(v)) + ", not an array");
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
  m.channel.check_usable("quit");
  std::uint64_t id = m.channel.fresh_id();
  try {
    m.channel.send("quit", {}, id, deadline);
  } catch (const ClosedError&) {
    return;  // QEMU went away between our last read and this write: it quit
  }
  // QEMU may close the socket before we read its reply: both mean it quits.
  auto wait = m.channel.await_reply(id, deadline);
  if (wait == Channel::Wait::Reply) {
    expect_empty("quit", result_or_throw(m.channel.take_reply(), "quit", "QEMU"));
    return;
  }
  if (wait == Channel::Wait::Closed) return;
  m.fail(wait, "the reply to 'quit'", start);
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
    throw ProtocolError("human-monitor-command: reply is " + std::string(avm::json::kind_name(v)) + ", not a string");
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
    if (m.channel.broken()) m.fail(Channel::Wait::Broken, what, start);
    if (m.channel.closed()) m.fail(Channel::Wait::Closed, what, start);
    if (Clock::now() >= deadline) return std::nullopt;
    EventCursor last = m.events.cursor();
    m.channel.pump([&] { return m.events.cursor() != last; }, deadline);
  }
}

std::vector<Event> QmpClient::events_since(EventCursor from) const { return impl_->events.since(from); }

bool QmpClient::drain() {
  Impl& m = *impl_;
  m.channel.pump([] { return false; }, Clock::now());
  if (m.channel.broken()) m.fail(Channel::Wait::Broken, "events", Clock::now());
  return !m.channel.closed();
}

bool QmpClient::wait_closed(Ms timeout) {
  Impl& m = *impl_;
  auto start = Clock::now();
  m.channel.pump([&] { return m.channel.closed(); }, start + timeout);
  if (m.channel.broken()) m.fail(Channel::Wait::Broken, "QEMU to close the connection", start);
  return m.channel.closed();
}

bool QmpClient::closed() const { return impl_->channel.closed(); }

}  // namespace avm::qmp
