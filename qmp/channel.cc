#include "qmp/channel.h"

#include <algorithm>

#include "qmp/errors.h"

namespace avm::qmp {

Channel::Channel(Transport transport, Options options, Peer& peer, std::uint64_t first_id)
    : transport_(std::move(transport)),
      opts_(std::move(options)),
      peer_(peer),
      framer_(opts_.framer),
      next_id_(first_id) {}

void Channel::poison(const std::string& why) {
  broken_ = "malformed data on the " + opts_.name + " " + where() + ": " + why;
  transport_.close();
}

void Channel::malformed(const std::string& why) {
  if (opts_.garbage_breaks) return poison(why);
  peer_.garbage(why);
  // Fails the commands in flight (not an id-less wait: the Peer decides).
  if (awaiting_ && std::any_of(pending_.begin(), pending_.end(), [](const auto& id) { return id.has_value(); }))
    garbage_ = why;
}

void Channel::route(Frame& f) {
  if (f.kind == Frame::Kind::Sentinel) return;  // the framer has reset
  if (f.kind == Frame::Kind::Error) return malformed(f.error);
  Message m;
  try {
    m = classify(std::move(f.value));
  } catch (const ProtocolError& e) {
    return malformed(e.what());
  }
  if (m.kind != Message::Kind::Reply) return peer_.message(m);
  if (awaiting_) {
    for (std::size_t i = 0; i < pending_.size(); ++i) {
      if (!pending_[i] || replies_[i] || m.reply.our_id() != pending_[i]) continue;
      replies_[i] = std::move(m.reply);
      return;
    }
  }
  if (peer_.take_unmatched(m.reply) && replies_.size() == 1) replies_[0] = std::move(m.reply);
  // Otherwise a late or stale reply: dropped, so it is never taken for
  // another command's.
}

bool Channel::pump(const std::function<bool()>& done, Clock::time_point deadline) {
  while (!done()) {
    if (broken_ || closed_) return false;
    rbuf_.clear();
    auto r = transport_.read_some(rbuf_, deadline);
    if (r == Transport::Read::Timeout) return false;
    if (r == Transport::Read::Closed) {
      closed_ = true;
      truncated_ = framer_.mid_message();
      transport_.close();
      return done();
    }
    frames_.clear();
    framer_.feed(rbuf_, frames_);
    for (auto& f : frames_) {
      route(f);
      if (broken_) break;
    }
  }
  return true;
}

void Channel::check_usable(std::string_view command) const {
  if (broken_) throw ProtocolError(*broken_, "reconnect to the socket");
  if (closed_)
    throw ClosedError("cannot send '" + std::string(command) + "': the " + opts_.name + " " + where() +
                          " is closed",
                      opts_.closed_hint);
}

void Channel::send(std::string_view command, const boost::json::object& args, std::optional<std::uint64_t> id,
                   Clock::time_point deadline, std::string_view prefix) {
  std::string bytes(prefix);
  bytes += make_request(std::string(command), args, id);
  bytes += "\n";
  write(bytes, std::string(command), deadline);
}

void Channel::send(const std::vector<Request>& requests, Clock::time_point deadline) {
  std::string bytes, names;
  for (const auto& r : requests) {
    bytes += make_request(r.command, r.args, r.id);
    bytes += "\n";
    names += (names.empty() ? "" : "', '") + r.command;
  }
  write(bytes, names, deadline);
}

void Channel::write(const std::string& bytes, const std::string& command, Clock::time_point deadline) {
  try {
    transport_.write(bytes, deadline);
  } catch (const ClosedError&) {
    // The peer is gone; take in what it sent before it went (SHUTDOWN...).
    pump([&] { return closed_; }, deadline);
    closed_ = true;
    transport_.close();
    throw ClosedError("'" + command + "': the " + opts_.name + " " + where() + " closed", opts_.closed_hint);
  } catch (const TimeoutError& e) {
    closed_ = true;  // the transport closed itself: a partial write is unusable
    throw TimeoutError("the " + opts_.name + " " + where() + " to accept '" + command + "'", e.waited(),
                       "QEMU is not reading the socket: it may be hung");
  }
}

Channel::Wait Channel::await_reply(std::optional<std::uint64_t> id, Clock::time_point deadline) {
  pending_.assign(1, id);
  return await_pending(deadline);
}

Channel::Wait Channel::await_replies(const std::vector<std::uint64_t>& ids, Clock::time_point deadline) {
  pending_.assign(ids.begin(), ids.end());
  return await_pending(deadline);
}

Channel::Wait Channel::await_pending(Clock::time_point deadline) {
  awaiting_ = true;
  replies_.assign(pending_.size(), std::nullopt);
  garbage_.reset();
  auto all_here = [&] { return std::all_of(replies_.begin(), replies_.end(), [](const auto& r) { return r.has_value(); }); };
  pump([&] { return all_here() || garbage_.has_value(); }, deadline);
  pending_.clear();
  awaiting_ = false;
  if (all_here()) return Wait::Reply;
  if (garbage_) return Wait::Garbage;
  if (broken_) return Wait::Broken;
  if (closed_) return Wait::Closed;
  return Wait::Timeout;
}

Reply Channel::take_reply(std::size_t i) {
  Reply r = std::move(*replies_.at(i));
  replies_[i].reset();
  return r;
}

void Channel::fail(Wait why, const std::string& what, Clock::time_point start,
                   const std::string& timeout_hint, const std::string& note) const {
  if (why == Wait::Garbage && garbage_)
    throw ProtocolError("malformed data on the " + opts_.name + " " + where() + " while waiting for " + what +
                            ": " + *garbage_,
                        opts_.garbage_hint);
  if (broken_) throw ProtocolError(*broken_ + " (while waiting for " + what + ")", opts_.garbage_hint);
  if (closed_)
    throw ClosedError("the " + opts_.name + " " + where() + " closed while waiting for " + what +
                          (truncated_ ? " (in the middle of a message)" : ""),
                      opts_.closed_hint);
  throw TimeoutError(what + " on " + where() + note, elapsed_since(start), timeout_hint);
}

}  // namespace avm::qmp
