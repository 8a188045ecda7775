#include "qmp/qga_client.h"

#include <algorithm>
#include <deque>
#include <random>
#include <thread>

#include "qmp/fields.h"
#include "qmp/framer.h"
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

struct QgaClient::Impl {
  explicit Impl(Transport t) : transport(std::move(t)) {}

  Transport transport;
  Framer framer{FramerOptions{.sentinel = true}};
  std::uint64_t next_id = random_base();
  bool is_synced = false;
  bool echoes_ids = true;                 // learnt from the sync reply
  std::deque<std::uint64_t> sync_ids;     // recent sync ids: their late replies are stale
  bool syncing = false;
  std::optional<std::uint64_t> pending;   // command in flight
  std::optional<Reply> reply;
  std::optional<std::string> garbage;     // malformed data while a command was in flight
  bool closed = false;
  std::uint64_t stale = 0;
  std::string rbuf;
  std::vector<Frame> frames;

  std::string where() const { return transport.path().string(); }

  bool is_sync_id(const json::value& v) const {
    std::optional<std::uint64_t> n;
    if (v.is_uint64()) n = v.get_uint64();
    if (v.is_int64() && v.get_int64() >= 0) n = static_cast<std::uint64_t>(v.get_int64());
    return n && std::find(sync_ids.begin(), sync_ids.end(), *n) != sync_ids.end();
  }

  void route(Frame& f) {
    if (f.kind == Frame::Kind::Sentinel) return;  // the framer has reset
    if (f.kind == Frame::Kind::Error) {
      // The framer now discards up to the next sentinel; only a sync brings one.
      is_synced = false;
      if (pending) garbage = f.error;
      return;
    }
    Message m;
    try {
      m = classify(std::move(f.value));
    } catch (const ProtocolError& e) {
      is_synced = false;
      if (pending) garbage = e.what();
      return;
    }
    if (m.kind != Message::Kind::Reply) {
      ++stale;  // the agent sends no greeting and no events
      return;
    }
    Reply& r = m.reply;
    if (syncing) {
      if (r.ok && is_sync_id(r.result)) {
        is_synced = true;
        echoes_ids = r.id.has_value();
        syncing = false;
      } else {
        ++stale;
      }
      return;
    }
    if (pending && r.our_id() == pending) {
      reply = std::move(r);
      return;
    }
    // An agent that does not echo ids (older than QEMU 2.12) answers in
    // order: take its id-less reply, unless it is a late sync answer.
    if (pending && !echoes_ids && !r.id && !(r.ok && is_sync_id(r.result))) {
      reply = std::move(r);
      return;
    }
    ++stale;
  }

  template <class Done>
  bool pump(Done done, Clock::time_point deadline) {
    while (!done()) {
      if (closed) return false;
      rbuf.clear();
      auto st = transport.read_some(rbuf, deadline);
      if (st == Transport::Read::Timeout) return false;
      if (st == Transport::Read::Closed) {
        closed = true;
        transport.close();
        return done();
      }
      frames.clear();
      framer.feed(rbuf, frames);
      for (auto& f : frames) route(f);
    }
    return true;
  }

  void write(const std::string& bytes, const std::string& command, Clock::time_point deadline) {
    try {
      transport.write(bytes, deadline);
    } catch (const ClosedError&) {
      closed = true;
      throw ClosedError("'" + command + "': the guest agent socket " + where() + " closed", kClosedHint);
    } catch (const TimeoutError& e) {
      closed = true;
      throw TimeoutError("the guest agent socket " + where() + " to accept '" + command + "'",
                         e.waited(), "QEMU is not reading the socket: it may be hung");
    }
  }

  std::uint64_t fresh_id() { return next_id++; }

  void sync(Ms timeout) {
    auto start = Clock::now();
    auto deadline = start + timeout;
    if (closed) throw ClosedError("the guest agent socket " + where() + " is closed", kClosedHint);
    // Everything buffered or in flight before the sentinel is stale.
    framer.discard_until_sentinel();
    is_synced = false;
    syncing = true;
    reply.reset();
    Ms interval(250);
    bool first = true;
    for (;;) {
      std::uint64_t id = fresh_id();
      sync_ids.push_back(id);
      if (sync_ids.size() > 64) sync_ids.pop_front();
      // 0xFF first (once): it makes the agent drop a half-read request left
      // by an earlier client. qemu-ga answers it with an id-less error,
      // which comes before the sentinel and is discarded.
      std::string bytes = first ? "\xff" : "";
      bytes += make_request("guest-sync-delimited", json::object{{"id", id}}, id);
      bytes += "\n";
      write(bytes, "guest-sync-delimited", deadline);
      first = false;
      auto attempt = std::min(deadline, Clock::now() + interval);
      pump([&] { return is_synced; }, attempt);
      if (is_synced) return;
      if (closed) {
        syncing = false;
        throw ClosedError("the guest agent socket " + where() +
                              " closed while waiting for guest-sync-delimited",
                          kClosedHint);
      }
      if (Clock::now() >= deadline) {
        syncing = false;
        throw TimeoutError("the guest agent to answer guest-sync-delimited on " + where(),
                           elapsed_since(start), kAgentHint);
      }
      interval = std::min(interval * 2, Ms(2000));
    }
  }

  json::value execute(std::string_view command_sv, const json::object& args, Ms timeout) {
    std::string command(command_sv);
    auto start = Clock::now();
    auto deadline = start + timeout;
    if (closed) throw ClosedError("cannot send '" + command + "': the guest agent socket " + where() +
                                      " is closed", kClosedHint);
    if (!is_synced) sync(remaining(deadline));
    std::uint64_t id = fresh_id();
    pending = id;
    reply.reset();
    garbage.reset();
    write(make_request(command, args, id) + "\n", command, deadline);
    bool ok = pump([&] { return reply.has_value() || garbage.has_value(); }, deadline);
    pending.reset();
    if (garbage) {
      is_synced = false;
      std::string why = *garbage;
      garbage.reset();
      throw ProtocolError(command + ": malformed data from the guest agent on " + where() + ": " + why,
                          "the next command resynchronises with the agent");
    }
    if (!ok) {
      // A late reply must not be taken for the next command's: resync first.
      is_synced = false;
      if (closed)
        throw ClosedError("the guest agent socket " + where() + " closed while waiting for the reply to '" +
                              command + "'",
                          kClosedHint);
      throw TimeoutError("the guest agent's reply to '" + command + "' on " + where(), elapsed_since(start),
                         kAgentHint);
    }
    Reply r = std::move(*reply);
    reply.reset();
    return result_or_throw(std::move(r), command, "guest agent");
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

namespace {

template <class T>
T typed(std::string_view command, const json::value& v) {
  return with_context(command, [&] { return json::value_to<T>(v); });
}

}  // namespace

void QgaClient::ping(Ms t) { execute("guest-ping", {}, t); }
GuestInfo QgaClient::info(Ms t) { return typed<GuestInfo>("guest-info", execute("guest-info", {}, t)); }
OsInfo QgaClient::osinfo(Ms t) { return typed<OsInfo>("guest-get-osinfo", execute("guest-get-osinfo", {}, t)); }

std::int64_t QgaClient::get_time(Ms t) {
  json::value v = execute("guest-get-time", {}, t);
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64() && v.get_uint64() <= static_cast<std::uint64_t>(INT64_MAX))
    return static_cast<std::int64_t>(v.get_uint64());
  throw ProtocolError(std::string("guest-get-time: reply is ") + kind_name(v) + ", not an integer");
}

std::optional<std::string> QgaClient::read_file(std::string_view path, Ms timeout, std::size_t max_bytes) {
  auto deadline = Clock::now() + timeout;
  std::int64_t handle;
  try {
    json::value h = execute("guest-file-open", json::object{{"path", path}, {"mode", "r"}}, remaining(deadline));
    if (!h.is_int64()) throw ProtocolError(std::string("guest-file-open: reply is ") + kind_name(h) + ", not a handle");
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
        Fields f(r, "reply");
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
  return with_context("guest-exec", [&] { return Fields(v, "reply").int64("pid"); });
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
    // guest-exec-status has no notification: poll, backing off.
    std::this_thread::sleep_for(std::min(interval, remaining(deadline)));
    interval = std::min(interval * 2, Ms(250));
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
  if (m.closed) throw ClosedError("the guest agent socket " + m.where() + " is closed", kClosedHint);
  if (!m.is_synced) m.sync(remaining(deadline));
  std::uint64_t id = m.fresh_id();
  m.pending = id;
  m.reply.reset();
  m.garbage.reset();
  m.write(make_request(command, args, id) + "\n", command, deadline);
  m.pump([&] { return m.reply.has_value(); }, Clock::now() + refusal_wait);
  m.pending.reset();
  if (m.reply) {  // refused: the stream is still in step
    Reply r = std::move(*m.reply);
    m.reply.reset();
    result_or_throw(std::move(r), command, "guest agent");
    return;
  }
  m.is_synced = false;  // the guest is going down; any later use resyncs
}

void QgaClient::shutdown(std::string_view mode, Ms refusal_wait) {
  execute_no_reply("guest-shutdown", json::object{{"mode", mode}}, refusal_wait);
}

const std::filesystem::path& QgaClient::socket() const { return impl_->transport.path(); }
std::uint64_t QgaClient::stale_replies() const { return impl_->stale; }

}  // namespace avm::qmp
