// Boost.Asio lives here and only here. Every wait is io_context::run_one_until
// with the caller's deadline; a read stays posted across calls, so a read
// that times out loses nothing.
#include "qmp/transport.h"

#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/write.hpp>
#include <optional>

#include "qmp/errors.h"

namespace avm::qmp {

namespace asio = boost::asio;
using stream = asio::local::stream_protocol;
using boost::system::error_code;

struct Transport::Impl {
  // User-provided, so that make_unique default-initialises: value
  // initialisation would zero the 64 KiB buffer first.
  Impl() {}
  std::filesystem::path path;
  std::string what;
  asio::io_context io{1};
  stream::socket socket{io};
  // The posted read: its buffer, and what it brought that nobody took yet.
  // Not zeroed: only what a read brought is used, and a buffer written
  // whole at every connect cost 16 page faults (list opens one per VM).
  std::array<char, 64 * 1024> buf;
  bool reading = false;
  std::string pending;
  bool eof = false;
  bool write_failed = false;  // the peer stopped taking bytes (EPIPE)
  Clock::time_point started = Clock::now();

  // Runs handlers until `done()` or the deadline. True if done. With the
  // deadline already past it still takes what is ready (poll), so a
  // zero timeout means "whatever has arrived", not "nothing".
  template <class Done>
  bool run_until(Done done, Clock::time_point deadline) {
    while (!done()) {
      if (io.stopped()) io.restart();
      std::size_t ran = Clock::now() >= deadline ? io.poll_one() : io.run_one_until(deadline);
      if (ran > 0) continue;
      if (Clock::now() >= deadline) {
        // run_one_until gave up at the deadline; one last non-blocking look.
        if (io.stopped()) io.restart();
        if (io.poll_one() > 0) continue;
        return done();
      }
      if (io.stopped()) return done();  // no work left: nothing can change
    }
    return true;
  }

  void post_read() {
    if (reading || eof || !socket.is_open()) return;
    reading = true;
    socket.async_read_some(asio::buffer(buf), [this](const error_code& ec, std::size_t n) {
      reading = false;
      if (n > 0) pending.append(buf.data(), n);
      if (ec == asio::error::operation_aborted) return;  // closed or cancelled by us
      if (ec) eof = true;  // eof, reset, or any other error: the stream is over
    });
  }
};

Transport::Transport(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Transport::Transport(Transport&&) noexcept = default;
Transport& Transport::operator=(Transport&&) noexcept = default;
Transport::~Transport() {
  if (impl_) close();
}

Transport Transport::connect(const std::filesystem::path& path, Clock::time_point deadline,
                             std::string_view what) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->what = std::string(what);
  stream::endpoint endpoint;
  try {
    endpoint = stream::endpoint(path.string());
  } catch (const boost::system::system_error& e) {
    throw ConnectError("cannot use the " + impl->what + " " + path.string() + ": " + e.code().message(),
                       "unix socket paths are limited to 107 bytes; use a shorter folder");
  }
  std::optional<error_code> result;
  impl->socket.async_connect(endpoint,
                             [&](const error_code& ec) { result = ec; });
  if (!impl->run_until([&] { return result.has_value(); }, deadline)) {
    impl->socket.close();
    throw TimeoutError("a connection to the " + impl->what + " " + path.string(),
                       elapsed_since(impl->started),
                       "the process behind it is not accepting connections; is it hung?");
  }
  const error_code& ec = *result;
  if (ec) {
    std::string where = impl->what + " " + path.string();
    if (ec == asio::error::not_found || ec.value() == ENOENT)
      throw ConnectError("no " + where + " (" + ec.message() + ")",
                         "is the VM running? QEMU creates the socket when it starts");
    if (ec == asio::error::connection_refused)
      throw ConnectError("nothing listens on the " + where + " (" + ec.message() + ")",
                         "a stale socket: the QEMU that made it has exited");
    if (ec == asio::error::access_denied || ec.value() == EPERM)
      throw ConnectError("not permitted to connect to the " + where + " (" + ec.message() + ")",
                         "run as the user that started the VM");
    throw ConnectError("cannot connect to the " + where + ": " + ec.message());
  }
  return Transport(std::move(impl));
}

void Transport::write(std::string_view bytes, Clock::time_point deadline) {
  Impl& m = *impl_;
  if (!m.socket.is_open() || m.eof || m.write_failed)
    throw ClosedError("the " + m.what + " " + m.path.string() + " is closed");
  std::optional<error_code> result;
  auto start = Clock::now();
  asio::async_write(m.socket, asio::buffer(bytes.data(), bytes.size()),
                    [&](const error_code& ec, std::size_t) { result = ec; });
  if (!m.run_until([&] { return result.has_value(); }, deadline)) {
    // A half-written message cannot be taken back: the stream is unusable.
    close();
    m.run_until([&] { return result.has_value(); }, Clock::now() + Ms(1000));
    throw TimeoutError("the " + m.what + " " + m.path.string() + " to accept " +
                           std::to_string(bytes.size()) + " bytes",
                       elapsed_since(start),
                       "the peer stopped reading; it may be hung");
  }
  if (*result) {
    // Reading goes on: what the peer said before it went is still to be read.
    m.write_failed = true;
    throw ClosedError("the " + m.what + " " + m.path.string() +
                      " closed while writing to it (" + result->message() + ")");
  }
}

Transport::Read Transport::read_some(std::string& into, Clock::time_point deadline) {
  Impl& m = *impl_;
  auto ready = [&] { return !m.pending.empty() || m.eof || !m.socket.is_open(); };
  if (!ready()) m.post_read();
  m.run_until(ready, deadline);
  if (!m.pending.empty()) {
    into.append(m.pending);
    m.pending.clear();
    return Read::Data;
  }
  if (m.eof || !m.socket.is_open()) return Read::Closed;
  return Read::Timeout;
}

void Transport::close() noexcept {
  Impl& m = *impl_;
  error_code ignored;
  if (m.socket.is_open()) {
    m.socket.shutdown(stream::socket::shutdown_both, ignored);
    m.socket.close(ignored);
  }
  // Let a posted read finish (aborted) so no handler outlives the socket.
  if (m.reading) {
    if (m.io.stopped()) m.io.restart();
    m.io.run_for(std::chrono::milliseconds(100));
  }
  m.eof = true;
}

bool Transport::is_open() const noexcept { return impl_ && impl_->socket.is_open() && !impl_->eof; }

const std::filesystem::path& Transport::path() const noexcept { return impl_->path; }

}  // namespace avm::qmp
