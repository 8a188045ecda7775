#include "qmp/qga_client.h"

#include <algorithm>
#include <deque>
#include <random>
#include <thread>

#include "json/text.h"
#include "qmp/channel.h"
#include "qmp/message.h"
#include "qmp/transport.h"
#include "util/base64.h"

namespace avm::qmp {

namespace json = boost::json;

namespace {

constexpr const char* kAgentHint =
    "is qemu-guest-agent running in the guest? It starts late in boot: "
    "wait longer (a longer timeout) or check the guest's console log";
constexpr const char* kClosedHint = "QEMU has exited, or another client took the guest agent socket";

// Ids start at a random point so replies left in the agent's stream by an
// earlier client never match ours (JSON integers: keep below 2^53).
std::uint64_t random_base() {
  std::random_device rd;
  std::uint64_t v = (std::uint64_t(rd()) << 20) ^ rd();
  return (v & ((std::uint64_t(1) << 40) - 1)) + 1000;
}

}  // namespace

// The guest agent on the channel: guest-sync-delimited (0xFF, then a fresh
// id the agent echoes back as its result) before the first command and
// after anything that may have left the stream out of step (a timeout,
// malformed data); replies to nothing in flight are counted as stale.
struct QgaClient::Impl final : Channel::Peer {
  explicit Impl(Transport t)
      : channel(std::move(t),
                {.framer = FramerOptions{.sentinel = true},
                 .garbage_breaks = false,
                 .name = "guest agent socket",
                 .closed_hint = kClosedHint,
                 .garbage_hint = "the next command resynchronises with the agent"},
                *this, random_base()) {}

  Channel channel;
  bool is_synced = false;
  bool echoes_ids = true;              // learnt from the sync reply
  std::deque<std::uint64_t> sync_ids;  // recent sync ids: their late replies are stale
  bool syncing = false;
  std::uint64_t stale = 0;

  bool is_sync_id(const json::value& v) const {
    std::optional<std::uint64_t> n;
    if (v.is_uint64()) n = v.get_uint64();
    if (v.is_int64() && v.get_int64() >= 0) n = static_cast<std::uint64_t>(v.get_int64());
    return n && std::find(sync_ids.begin(), sync_ids.end(), *n) != sync_ids.end();
  }

  void message(Message&) override { ++stale; }  // the agent sends no greeting and no events

  // The framer now discards up to the next sentinel; only a sync brings one.
  void garbage(const std::string&) override { is_synced = false; }

  bool take_unmatched(const Reply& r) override {
    if (syncing) {
      // The answer to any recent sync will do: the stream is in step after it.
      if (r.ok && is_sync_id(r.result)) {
        is_synced = true;
        echoes_ids = r.id.has_value();
        syncing = false;
        return true;
      }
      ++stale;
      return false;
    }
    // An agent that does not echo ids (older than QEMU 2.12) answers in
    // order: take its id-less reply, unless it is a late sync answer.
    if (channel.awaiting() && !echoes_ids && !r.id && !(r.ok && is_sync_id(r.result))) return true;
    ++stale;
    return false;
  }

  void sync(Ms timeout) {
    auto start = Clock::now();
    auto deadline = start + timeout;
    channel.check_usable("guest-sync-delimited");
    // Everything buffered or in flight before the sentinel is stale.
    channel.framer().discard_until_sentinel();
    is_synced = false;
    syncing = true;
    Ms interval(250);
    bool first = true;
    for (;;) {
      std::uint64_t id = channel.fresh_id();
      sync_ids.push_back(id);
      if (sync_ids.size() > 64) sync_ids.pop_front();
      // 0xFF first (once): it makes the agent drop a half-read request left
      // by an earlier client. qemu-ga answers it with an id-less error,
      // which comes before the sentinel and is discarded.
      try {
        channel.send("guest-sync-delimited", json::object{{"id", id}}, id, deadline, first ? "\xff" : "");
      } catch (...) {
        syncing = false;
        throw;
      }
      first = false;
      // Whichever sync's answer comes (see take_unmatched), not only this one's.
      auto wait = channel.await_reply(std::nullopt, std::min(deadline, Clock::now() + interval));
      if (wait == Channel::Wait::Reply) {
        channel.take_reply();
        return;
      }
      if (channel.closed()) {
        syncing = false;
        channel.fail(Channel::Wait::Closed, "guest-sync-delimited", start, kAgentHint);
      }
      if (Clock::now() >= deadline) {
        syncing = false;
        throw TimeoutError("the guest agent to answer guest-sync-delimited on " + channel.where(),
                           elapsed_since(start), kAgentHint);
      }
      interval = std::min(interval * 2, Ms(2000));
    }
  }

  json::value execute(std::string_view command_sv, const json::object& args, Ms timeout) {
    std::string command(command_sv);
    auto start = Clock::now();
    auto deadline = start + timeout;
    channel.check_usable(command);
    if (!is_synced) sync(remaining(deadline));
    std::uint64_t id = channel.fresh_id();
    channel.send(command, args, id, deadline);
    auto wait = channel.await_reply(id, deadline);
    if (wait != Channel::Wait::Reply) {
      // A late reply must not be taken for the next command's: resync first.
      is_synced = false;
      channel.fail(wait, "the reply to '" + command + "'", start, kAgentHint);
    }
    return result_or_throw(channel.take_reply(), command, "guest agent");
  }
};

QgaClient::QgaClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
QgaClient::QgaClient(QgaClient&&) noexcept = default;
QgaClient& QgaClient::operator=(QgaClient&&) noexcept = default;
QgaClient::~QgaClient() = default;

QgaClient QgaClient::connect(const std::filesystem::path& socket, Ms timeout) {
  return QgaClient(std::make_unique<Impl>(
      Transport::connect(socket, Clock::now() + timeout, "guest agent socket")));
}

void QgaClient::sync(Ms timeout) { impl_->sync(timeout); }
bool QgaClient::synced() const { return impl_->is_synced; }

json::value QgaClient::execute(std::string_view command, json::object args, Ms timeout) {
  return impl_->execute(command, args, timeout);
}

void QgaClient::ping(Ms t) { execute("guest-ping", {}, t); }
GuestInfo QgaClient::info(Ms t) { return typed<GuestInfo>("guest-info", execute("guest-info", {}, t)); }
OsInfo QgaClient::osinfo(Ms t) { return typed<OsInfo>("guest-get-osinfo", execute("guest-get-osinfo", {}, t)); }

std::int64_t QgaClient::get_time(Ms t) {
  json::value v = execute("guest-get-time", {}, t);
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64() && v.get_uint64() <= static_cast<std::uint64_t>(INT64_MAX))
    return static_cast<std::int64_t>(v.get_uint64());
  throw ProtocolError(std::string("guest-get-time: reply is ") + avm::json::kind_name(v) + ", not an integer");
}

void QgaClient::set_time(std::int64_t ns, Ms t) { execute("guest-set-time", {{"time", ns}}, t); }

std::optional<std::string> QgaClient::read_file(std::string_view path, Ms timeout, std::size_t max_bytes) {
  auto deadline = Clock::now() + timeout;
  std::int64_t handle;
  try {
    json::value h = execute("guest-file-open", json::object{{"path", path}, {"mode", "r"}}, remaining(deadline));
    if (!h.is_int64()) throw ProtocolError(std::string("guest-file-open: reply is ") + avm::json::kind_name(h) + ", not a handle");
    handle = h.get_int64();
  } catch (const CommandError&) {
    return std::nullopt;
  }
  std::string out;
  std::exception_ptr failure;
  try {
    for (;;) {
      json::value r = execute("guest-file-read", json::object{{"handle", handle}, {"count", 65536}},
                              remaining(deadline));
      auto chunk = with_context("guest-file-read", [&] {
        auto f = fields(r, "reply");
        auto text = base64_decode(f.str("buf-b64"));
        if (!text) throw ProtocolError("guest-file-read: 'buf-b64' is not base64");
        return std::make_pair(std::move(*text), f.boolean("eof"));
      });
      out += chunk.first;
      if (out.size() > max_bytes)
        throw ProtocolError("guest file " + std::string(path) + " is larger than " + std::to_string(max_bytes) + " bytes");
      if (chunk.second || chunk.first.empty()) break;
    }
  } catch (...) {
    failure = std::current_exception();
  }
  try {
    execute("guest-file-close", json::object{{"handle", handle}}, remaining(deadline));
  } catch (...) {
    if (!failure) failure = std::current_exception();
  }
  if (failure) std::rethrow_exception(failure);
  return out;
}

std::int64_t QgaClient::exec_start(const GuestExecArgs& args, Ms t) {
  json::value v = execute("guest-exec", json::value_from(args).as_object(), t);
  return with_context("guest-exec", [&] { return fields(v, "reply").int64("pid"); });
}

ExecStatus QgaClient::exec_status(std::int64_t pid, Ms t) {
  return typed<ExecStatus>("guest-exec-status",
                           execute("guest-exec-status", json::object{{"pid", pid}}, t));
}

ExecResult QgaClient::exec(const std::vector<std::string>& argv, Ms timeout,
                           const std::vector<std::string>& env, std::string_view input) {
  if (argv.empty()) throw Error("guest-exec: no program given");
  auto start = Clock::now();
  auto deadline = start + timeout;
  GuestExecArgs args;
  args.path = argv[0];
  args.args.assign(argv.begin() + 1, argv.end());
  args.env = env;
  if (!input.empty()) args.input = std::string(input);
  std::int64_t pid = exec_start(args, remaining(deadline));
  Ms interval(10);
  auto still_running = [&] {
    return TimeoutError("'" + argv[0] + "' (guest pid " + std::to_string(pid) + ") to exit",
                        elapsed_since(start), "it is still running in the guest; pass a longer timeout");
  };
  for (;;) {
    ExecStatus s;
    try {
      s = exec_status(pid, std::max(remaining(deadline), Ms(1)));
    } catch (const TimeoutError&) {
      throw still_running();  // the deadline passed while asking
    }
    if (s.exited) return exec_result(std::move(s));
    if (Clock::now() >= deadline) throw still_running();
    // guest-exec-status has no notification: poll, backing off, to 50 ms
    // in the first two seconds (a short command's result is not held up by
    // a long sleep; a spawn's claim waits on one), then to 250 ms.
    std::this_thread::sleep_for(std::min(interval, remaining(deadline)));
    interval = std::min(interval * 2, elapsed_since(start) < Ms(2000) ? Ms(50) : Ms(250));
  }
}

bool QgaClient::replies_on_success(std::string_view command) {
  return !(command == "guest-shutdown" || command == "guest-suspend-disk" ||
           command == "guest-suspend-ram" || command == "guest-suspend-hybrid");
}

void QgaClient::execute_no_reply(std::string_view command_sv, json::object args, Ms refusal_wait) {
  Impl& m = *impl_;
  std::string command(command_sv);
  auto deadline = Clock::now() + refusal_wait + Ms(5000);
  m.channel.check_usable(command);
  if (!m.is_synced) m.sync(remaining(deadline));
  std::uint64_t id = m.channel.fresh_id();
  m.channel.send(command, args, id, deadline);
  if (m.channel.await_reply(id, Clock::now() + refusal_wait) == Channel::Wait::Reply) {
    // Refused: the stream is still in step.
    result_or_throw(m.channel.take_reply(), command, "guest agent");
    return;
  }
  m.is_synced = false;  // the guest is going down; any later use resyncs
}

void QgaClient::shutdown(std::string_view mode, Ms refusal_wait) {
  execute_no_reply("guest-shutdown", json::object{{"mode", mode}}, refusal_wait);
}

const std::filesystem::path& QgaClient::socket() const { return impl_->channel.path(); }
std::uint64_t QgaClient::stale_replies() const { return impl_->stale; }

}  // namespace avm::qmp
