// Frames whole JSON values out of a byte stream, however the bytes arrive:
// several messages in one read, one message split over many, messages of
// many MiB. No I/O: feed it bytes (a socket's, a test's, a fuzzer's).
#pragma once

#include <boost/json/stream_parser.hpp>
#include <boost/json/value.hpp>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace avm::qmp {

struct Frame {
  enum class Kind {
    Value,     // a complete top-level JSON object (every number finite)
    Sentinel,  // a 0xFF byte (QGA only): whatever came before it is void
    Error,     // malformed input; `error` says what and where
  };
  Kind kind = Kind::Value;
  boost::json::value value;  // Kind::Value
  std::string error;         // Kind::Error
};

struct FramerOptions {
  // QGA: 0xFF (never part of valid UTF-8 JSON) resets the parser and yields
  // a Sentinel frame; after an error, bytes are discarded up to the next 0xFF.
  // QMP: an error poisons the stream (every later byte is ignored).
  bool sentinel = false;
  // A single message larger than this is an error (QEMU's own limit for a
  // token is 64 MiB; query-qmp-schema is about 200 KiB).
  std::size_t max_message = 64u << 20;
  // Nesting deeper than this is an error (QEMU's parser allows 1024).
  std::size_t max_depth = 1024;
};

class Framer {
 public:
  explicit Framer(FramerOptions opts = {});

  // Parses `bytes`, appending each complete message (or sentinel, or error)
  // to `out` in stream order. Never throws on bad input: it yields an Error
  // frame, and what follows depends on `sentinel` (see FramerOptions).
  void feed(std::string_view bytes, std::vector<Frame>& out);

  // Drops any partial message and discards bytes until the next 0xFF
  // (QGA's guest-sync-delimited: everything before the sentinel is stale).
  void discard_until_sentinel();
  // Forgets everything, as if no byte had been fed.
  void reset();

  // True between a message's first byte and its last: a close now truncates it.
  bool mid_message() const noexcept { return state_ == State::InValue; }
  // True after an error in QMP mode: the stream cannot be trusted.
  bool poisoned() const noexcept { return state_ == State::Poisoned; }
  bool discarding() const noexcept { return state_ == State::Discarding; }

 private:
  enum class State { Between, InValue, Discarding, Poisoned };
  void fail(std::string_view bytes, std::size_t at, const std::string& why, std::vector<Frame>& out);
  void fail(std::string error, std::vector<Frame>& out);

  FramerOptions opts_;
  boost::json::stream_parser parser_;
  State state_ = State::Between;
  std::size_t size_ = 0;  // bytes of the current message so far
};

// A few bytes around `at`, printable, for error messages: 'abc\xff{"re...'.
std::string excerpt(std::string_view bytes, std::size_t at, std::size_t max = 40);

}  // namespace avm::qmp
