// A scripted unix-socket server for the QMP/QGA client tests. It accepts one
// client and runs a script (a lambda) on its own thread; the script sends
// bytes, reads the client's messages and checks them. Everything is torn
// down by the destructor, failure or not.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <deque>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "qmp/framer.h"
#include "util/fd.h"
#include "util/temp_dir.h"

namespace avm::qmp::test {

using namespace std::chrono_literals;

class FakeConn {
 public:
  FakeConn(Fd fd, int stop_fd) : fd_(std::move(fd)), stop_fd_(stop_fd) {}

  // Writes all of `bytes` (one write when it fits the socket buffer).
  void send(std::string_view bytes);
  // Writes `bytes` in pieces of `piece` bytes, waiting for the client to
  // read each piece before sending the next.
  void send_split(std::string_view bytes, std::size_t piece);
  // Waits until the client has read everything sent so far.
  void wait_drained(std::chrono::milliseconds timeout = 5s);

  // The client's next message (sentinel bytes are skipped unless asked for).
  boost::json::object next(std::chrono::milliseconds timeout = 5s);
  // The client's next message, which must execute `command`.
  boost::json::object expect(std::string_view command, std::chrono::milliseconds timeout = 5s);
  // The client's next frame must be a 0xFF sentinel.
  void expect_sentinel(std::chrono::milliseconds timeout = 5s);
  // Waits until the client closes its end.
  void wait_client_closed(std::chrono::milliseconds timeout = 5s);
  // Blocks until the server is being torn down (a peer that never speaks).
  void hold();
  void close();

  // {"return": result, "id": id of `request`}
  void reply(const boost::json::object& request, boost::json::value result,
             std::string_view eol = "\r\n");
  void error_reply(const boost::json::object& request, std::string_view cls,
                   std::string_view desc, std::string_view eol = "\r\n");
  void event(std::string_view name, boost::json::object data = {}, std::string_view eol = "\r\n");
  void greeting();  // QEMU 7.2's greeting as recorded

 private:
  // Reads more client bytes into frames_; false on the client's EOF.
  bool read_more(std::chrono::steady_clock::time_point deadline);
  Frame next_frame(std::chrono::milliseconds timeout);

  Fd fd_;
  int stop_fd_;
  Framer framer_{FramerOptions{.sentinel = true}};
  std::deque<Frame> frames_;
};

class FakeServer {
 public:
  using Script = std::function<void(FakeConn&)>;
  explicit FakeServer(Script script);
  ~FakeServer();
  FakeServer(const FakeServer&) = delete;
  FakeServer& operator=(const FakeServer&) = delete;

  const std::filesystem::path& socket() const { return socket_; }
  // Waits for the script to end and returns what went wrong in it ("" if
  // nothing). A script still running at the deadline is reported as such.
  std::string finish(std::chrono::milliseconds timeout = 10s);

 private:
  void run();
  TempDir dir_{"agent-vm-qmp-test"};
  std::filesystem::path socket_;
  Fd listen_fd_;
  Fd stop_fd_;  // eventfd: written by the destructor to wake the script
  Script script_;
  std::mutex mu_;
  std::string failure_;
  bool done_ = false;
  Fd done_fd_;  // eventfd: written when the script ends
  std::thread thread_;
};

}  // namespace avm::qmp::test
