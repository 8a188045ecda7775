// One JSON channel to a peer of QEMU's (the QMP monitor, the guest agent):
// it owns the socket, the framer, the id of the command in flight and its
// reply, reading with a deadline, and the errors for a close, a timeout and
// malformed data. A reply is taken only when it carries the id in flight
// (or when the Peer takes it): a late reply to a command that timed out is
// dropped, never paired with the next command.
//
// What differs between the two peers is a Peer policy on top, as in QEMU's
// python qemu.qmp (protocol.py owns the connection, qmp_client.py adds the
// greeting and negotiation): QmpClient adds the greeting, capabilities and
// the event buffer; QgaClient adds guest-sync-delimited and stale replies.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qmp/clock.h"
#include "qmp/framer.h"
#include "qmp/message.h"
#include "qmp/transport.h"

namespace avm::qmp {

class Channel {
 public:
  // What a peer adds to the channel. Called while reading, from pump().
  class Peer {
   public:
    virtual ~Peer() = default;
    // A greeting or an event (replies go to take_unmatched or the command).
    virtual void message(Message& m) = 0;
    // A reply that does not carry the id in flight. True takes it as the
    // reply awaited (an agent that does not echo ids, the answer to a
    // sync); false drops it (late, stale).
    virtual bool take_unmatched(const Reply& r) = 0;
    // Malformed data, when it does not break the channel (see Options).
    virtual void garbage(const std::string& /*why*/) {}
  };

  struct Options {
    FramerOptions framer;
    // True: malformed data breaks the channel for good and closes it (QMP).
    // False: it goes to Peer::garbage and fails the command in flight; the
    // framer skips to the next sentinel (the guest agent).
    bool garbage_breaks = true;
    std::string name;  // "QMP connection", "guest agent socket": in messages
    std::string closed_hint;
    std::string garbage_hint;
  };

  Channel(Transport transport, Options options, Peer& peer, std::uint64_t first_id = 1);
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  const std::filesystem::path& path() const noexcept { return transport_.path(); }
  std::string where() const { return transport_.path().string(); }
  bool closed() const noexcept { return closed_; }
  // Why the channel is broken (malformed data, see Options), if it is.
  const std::optional<std::string>& broken() const noexcept { return broken_; }
  // Breaks the channel (and closes it): its data cannot be trusted.
  void poison(const std::string& why);
  Framer& framer() noexcept { return framer_; }
  // True while a command's reply is awaited (for Peer::take_unmatched).
  bool awaiting() const noexcept { return awaiting_; }

  std::uint64_t fresh_id() noexcept { return next_id_++; }

  // Throws ProtocolError when broken, ClosedError when closed.
  void check_usable(std::string_view command) const;

  // Writes the request for `command` (after `prefix`, e.g. QGA's 0xFF),
  // newline-terminated. A close is a ClosedError (after taking in what the
  // peer sent before it went); a peer that stops reading is a TimeoutError
  // and closes the channel (a partial write cannot be taken back).
  void send(std::string_view command, const boost::json::object& args, std::optional<std::uint64_t> id,
            Clock::time_point deadline, std::string_view prefix = {});

  // Several requests in one write, in order (pipelined: the peer reads them
  // all from one wake-up and answers each in turn). Errors as send's.
  struct Request {
    std::string command;
    boost::json::object args;
    std::optional<std::uint64_t> id;
  };
  void send(const std::vector<Request>& requests, Clock::time_point deadline);

  // How a wait for a reply ended.
  enum class Wait { Reply, Timeout, Closed, Broken, Garbage };
  // Reads until the reply carrying `id` (or one the Peer takes) arrives,
  // or the deadline, a close, or malformed data. Then nothing is in flight:
  // a reply to `id` that comes later is dropped.
  Wait await_reply(std::optional<std::uint64_t> id, Clock::time_point deadline);
  // The same for several commands in flight at once (sent together): Reply
  // once each has its reply, whatever their order; otherwise why not, and
  // has_reply() tells which came.
  Wait await_replies(const std::vector<std::uint64_t>& ids, Clock::time_point deadline);
  // The reply to the i-th id awaited, after Wait::Reply.
  Reply take_reply(std::size_t i = 0);
  bool has_reply(std::size_t i) const { return i < replies_.size() && replies_[i].has_value(); }

  // Reads and routes whatever arrives until done() or the deadline. False
  // when it stopped for another reason (timeout, close, broken).
  bool pump(const std::function<bool()>& done, Clock::time_point deadline);

  // Throws the error that explains why a wait for `what` (begun at `start`)
  // ended empty: ProtocolError (broken, or malformed data), ClosedError,
  // or TimeoutError with `timeout_hint`; `note` is added to a timeout's text.
  [[noreturn]] void fail(Wait why, const std::string& what, Clock::time_point start,
                         const std::string& timeout_hint, const std::string& note = {}) const;

 private:
  void route(Frame& f);
  void malformed(const std::string& why);
  Wait await_pending(Clock::time_point deadline);
  void write(const std::string& bytes, const std::string& command, Clock::time_point deadline);

  Transport transport_;
  Options opts_;
  Peer& peer_;
  Framer framer_;
  std::uint64_t next_id_;
  std::vector<std::optional<std::uint64_t>> pending_;  // the ids in flight
  bool awaiting_ = false;
  std::vector<std::optional<Reply>> replies_;          // theirs, as they come
  std::optional<std::string> garbage_;    // malformed data while awaiting
  std::optional<std::string> broken_;
  bool closed_ = false;
  bool truncated_ = false;                // closed in the middle of a message
  std::string rbuf_;
  std::vector<Frame> frames_;
};

}  // namespace avm::qmp
