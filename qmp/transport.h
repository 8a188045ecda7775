// A unix-socket byte stream with a deadline on every wait. The only part of
// qmp/ that sees Boost.Asio (kept out of this header: pimpl). Synchronous:
// each Transport owns its io_context and runs it only inside its own calls,
// so a client per thread needs no locking.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "qmp/clock.h"

namespace avm::qmp {

class Transport {
 public:
  // Connects to the unix socket at `path`. Throws ConnectError (missing,
  // refused, not permitted) or TimeoutError. `what` names the peer in
  // messages ("QMP socket", "guest agent socket").
  static Transport connect(const std::filesystem::path& path, Clock::time_point deadline,
                           std::string_view what = "socket");
  Transport(Transport&&) noexcept;
  Transport& operator=(Transport&&) noexcept;
  ~Transport();

  // Writes all of `bytes`. Throws TimeoutError (the peer stopped reading;
  // the stream is then closed: a partial write cannot be taken back) or
  // ClosedError (the peer went away).
  void write(std::string_view bytes, Clock::time_point deadline);

  enum class Read { Data, Timeout, Closed };
  // Waits for bytes and appends what arrived to `into`. Data: something was
  // appended; Timeout: the deadline passed first (a later call picks up
  // where this one stopped: nothing is lost); Closed: end of stream.
  Read read_some(std::string& into, Clock::time_point deadline);

  // Closes the socket now (idempotent). Later reads return Closed.
  void close() noexcept;
  bool is_open() const noexcept;
  const std::filesystem::path& path() const noexcept;

 private:
  struct Impl;
  explicit Transport(std::unique_ptr<Impl>);
  std::unique_ptr<Impl> impl_;
};

}  // namespace avm::qmp
