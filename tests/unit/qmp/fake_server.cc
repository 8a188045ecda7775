#include "fake_server.h"

#include <linux/sockios.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/json/serialize.hpp>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace avm::qmp::test {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

namespace {

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what); }

// Waits for `fd` to be ready for `events`, or the stop fd, or the deadline.
// Returns false on timeout; throws when stopped.
bool wait_fd(int fd, short events, int stop_fd, Clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left < 0) left = 0;
    pollfd p[2] = {{fd, events, 0}, {stop_fd, POLLIN, 0}};
    int r = ::poll(p, 2, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail(std::string("poll: ") + std::strerror(errno));
    if (p[1].revents) fail("the fake server was stopped");
    if (r == 0) return false;
    return true;
  }
}

}  // namespace

void FakeConn::send(std::string_view bytes) {
  auto deadline = Clock::now() + 5s;
  while (!bytes.empty()) {
    ssize_t n = ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!wait_fd(fd_.get(), POLLOUT, stop_fd_, deadline)) fail("the client does not read");
      continue;
    }
    if (n < 0) fail(std::string("send: ") + std::strerror(errno));
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

void FakeConn::wait_drained(std::chrono::milliseconds timeout) {
  // SIOCOUTQ on a unix stream socket: bytes the peer has not consumed yet.
  // The kernel has no notification for "the peer read it", so this polls.
  auto deadline = Clock::now() + timeout;
  for (;;) {
    int queued = 0;
    if (::ioctl(fd_.get(), SIOCOUTQ, &queued) < 0) fail(std::string("SIOCOUTQ: ") + std::strerror(errno));
    if (queued == 0) return;
    if (Clock::now() >= deadline) fail("the client did not read what was sent");
    pollfd p{stop_fd_, POLLIN, 0};
    if (::poll(&p, 1, 1) > 0) fail("the fake server was stopped");
  }
}

void FakeConn::send_split(std::string_view bytes, std::size_t piece) {
  while (!bytes.empty()) {
    std::size_t n = std::min(piece, bytes.size());
    send(bytes.substr(0, n));
    wait_drained();
    bytes.remove_prefix(n);
  }
}

bool FakeConn::read_more(Clock::time_point deadline) {
  char buf[65536];
  for (;;) {
    if (!wait_fd(fd_.get(), POLLIN, stop_fd_, deadline)) fail("timed out waiting for the client");
    ssize_t n = ::recv(fd_.get(), buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n < 0) fail(std::string("recv: ") + std::strerror(errno));
    if (n == 0) return false;
    std::vector<Frame> frames;
    framer_.feed(std::string_view(buf, static_cast<std::size_t>(n)), frames);
    for (auto& f : frames) frames_.push_back(std::move(f));
    return true;
  }
}

Frame FakeConn::next_frame(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (frames_.empty())
    if (!read_more(deadline)) fail("the client closed the connection");
  Frame f = std::move(frames_.front());
  frames_.pop_front();
  if (f.kind == Frame::Kind::Error) fail("the client sent malformed JSON: " + f.error);
  return f;
}

json::object FakeConn::next(std::chrono::milliseconds timeout) {
  for (;;) {
    Frame f = next_frame(timeout);
    if (f.kind == Frame::Kind::Sentinel) continue;
    if (!f.value.is_object()) fail("the client sent a non-object");
    return std::move(f.value.get_object());
  }
}

json::object FakeConn::expect(std::string_view command, std::chrono::milliseconds timeout) {
  json::object m = next(timeout);
  auto* ex = m.if_contains("execute");
  if (!ex || !ex->is_string() || ex->get_string() != command)
    fail("expected the client to send '" + std::string(command) + "', got " + json::serialize(m));
  return m;
}

void FakeConn::expect_sentinel(std::chrono::milliseconds timeout) {
  Frame f = next_frame(timeout);
  if (f.kind != Frame::Kind::Sentinel) fail("expected 0xFF from the client, got " + json::serialize(f.value));
}

void FakeConn::wait_client_closed(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (read_more(deadline)) {
  }
}

void FakeConn::hold() {
  pollfd p{stop_fd_, POLLIN, 0};
  while (::poll(&p, 1, -1) < 0 && errno == EINTR) {
  }
}

void FakeConn::close() { fd_.reset(); }

void FakeConn::reply(const json::object& request, json::value result, std::string_view eol) {
  json::object o{{"return", std::move(result)}};
  if (auto* id = request.if_contains("id")) o["id"] = *id;
  send(json::serialize(o) + std::string(eol));
}

void FakeConn::error_reply(const json::object& request, std::string_view cls, std::string_view desc,
                           std::string_view eol) {
  json::object o;
  if (auto* id = request.if_contains("id")) o["id"] = *id;
  o["error"] = json::object{{"class", cls}, {"desc", desc}};
  send(json::serialize(o) + std::string(eol));
}

void FakeConn::event(std::string_view name, json::object data, std::string_view eol) {
  json::object o{{"timestamp", json::object{{"seconds", 1795614953}, {"microseconds", 619284}}},
                 {"event", name}};
  if (!data.empty()) o["data"] = std::move(data);
  send(json::serialize(o) + std::string(eol));
}

void FakeConn::greeting() {
  send(R"({"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}})"
       "\r\n");
}

FakeServer::FakeServer(Script script) : script_(std::move(script)) {
  socket_ = dir_.path() / "fake.sock";
  listen_fd_ = Fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listen_fd_) fail("socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket_.c_str(), sizeof addr.sun_path - 1);
  if (::bind(listen_fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0)
    fail(std::string("bind: ") + std::strerror(errno));
  if (::listen(listen_fd_.get(), 4) < 0) fail("listen");
  stop_fd_ = Fd(::eventfd(0, EFD_CLOEXEC));
  done_fd_ = Fd(::eventfd(0, EFD_CLOEXEC));
  thread_ = std::thread([this] { run(); });
}

void FakeServer::run() {
  std::string failure;
  try {
    if (!wait_fd(listen_fd_.get(), POLLIN, stop_fd_.get(), Clock::now() + 10s))
      fail("no client connected");
    Fd conn(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn) fail("accept");
    FakeConn c(std::move(conn), stop_fd_.get());
    script_(c);
  } catch (const std::exception& e) {
    failure = e.what();
  }
  {
    std::lock_guard lock(mu_);
    failure_ = failure;
    done_ = true;
  }
  std::uint64_t one = 1;
  (void)!::write(done_fd_.get(), &one, sizeof one);
}

std::string FakeServer::finish(std::chrono::milliseconds timeout) {
  pollfd p{done_fd_.get(), POLLIN, 0};
  int r;
  while ((r = ::poll(&p, 1, static_cast<int>(timeout.count()))) < 0 && errno == EINTR) {
  }
  std::lock_guard lock(mu_);
  if (!done_) return "the fake server's script is still running";
  return failure_;
}

FakeServer::~FakeServer() {
  std::uint64_t one = 1;
  (void)!::write(stop_fd_.get(), &one, sizeof one);
  if (thread_.joinable()) thread_.join();
}

}  // namespace avm::qmp::test
