#include "qmp/framer.h"

#include <algorithm>
#include <cstdio>

#include "json/text.h"

namespace avm::qmp {

namespace json = boost::json;

namespace {

json::parse_options parse_options(const FramerOptions& o) {
  json::parse_options p;
  p.max_depth = o.max_depth;
  return p;
}

bool is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

constexpr unsigned char kSentinel = 0xFF;

// The limit as said in an error: "64 MiB", or "512 bytes" for a small one.
std::string describe_size(std::size_t n) {
  if (n >= (1u << 20) && n % (1u << 20) == 0) return std::to_string(n >> 20) + " MiB";
  return std::to_string(n) + " bytes";
}

}  // namespace

std::string excerpt(std::string_view bytes, std::size_t at, std::size_t max) {
  at = std::min(at, bytes.size());
  std::string out = "'";
  std::size_t end = std::min(bytes.size(), at + max);
  for (std::size_t i = at; i < end; ++i) {
    auto c = static_cast<unsigned char>(bytes[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
      out += static_cast<char>(c);
    } else if (c == '\\' || c == '\'') {
      out += '\\';
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  out += end < bytes.size() ? "'..." : "'";
  return out;
}

Framer::Framer(FramerOptions opts) : opts_(opts), parser_(json::storage_ptr(), parse_options(opts)) {}

void Framer::reset() {
  parser_.reset();
  state_ = State::Between;
  size_ = 0;
}

void Framer::discard_until_sentinel() {
  parser_.reset();
  state_ = State::Discarding;
  size_ = 0;
}

void Framer::fail(std::string_view bytes, std::size_t at, const std::string& why,
                  std::vector<Frame>& out) {
  fail(why + " at " + excerpt(bytes, at), out);
}

void Framer::fail(std::string error, std::vector<Frame>& out) {
  Frame f;
  f.kind = Frame::Kind::Error;
  f.error = std::move(error);
  out.push_back(std::move(f));
  parser_.reset();
  size_ = 0;
  state_ = opts_.sentinel ? State::Discarding : State::Poisoned;
}

void Framer::feed(std::string_view bytes, std::vector<Frame>& out) {
  std::size_t i = 0;
  const std::size_t n = bytes.size();
  while (i < n) {
    auto c = static_cast<unsigned char>(bytes[i]);
    if (state_ == State::Poisoned) return;

    if (opts_.sentinel && c == kSentinel) {
      // Whatever was in progress is void; the next byte starts afresh.
      parser_.reset();
      size_ = 0;
      state_ = State::Between;
      Frame f;
      f.kind = Frame::Kind::Sentinel;
      out.push_back(std::move(f));
      ++i;
      continue;
    }
    if (state_ == State::Discarding) {
      auto next = bytes.find(static_cast<char>(kSentinel), i);
      if (next == std::string_view::npos) return;
      i = next;  // handled as a sentinel above
      continue;
    }
    if (state_ == State::Between) {
      if (is_space(c)) {
        ++i;
        continue;
      }
      if (c != '{') {
        fail(bytes, i, "expected a JSON object ('{') to start a message", out);
        continue;
      }
      state_ = State::InValue;
    }

    // InValue: hand the parser everything up to the next sentinel.
    std::size_t end = n;
    if (opts_.sentinel) {
      auto s = bytes.find(static_cast<char>(kSentinel), i);
      if (s != std::string_view::npos) end = s;
    }
    if (end == i) continue;  // a sentinel is next
    boost::system::error_code ec;
    std::size_t used = parser_.write_some(bytes.data() + i, end - i, ec);
    if (ec) {
      fail(bytes, i + used, "malformed JSON (" + ec.message() + ")", out);
      i += std::max<std::size_t>(used, 1);
      continue;
    }
    size_ += used;
    i += used;
    // The limit is on the message, from '{' to '}'. A write that finishes
    // the value also reads the whitespace after it, which bytes fed in
    // pieces would leave for between the messages: it does not count.
    std::size_t trailing = 0;
    if (parser_.done())
      while (trailing < used && is_space(static_cast<unsigned char>(bytes[i - 1 - trailing]))) ++trailing;
    if (size_ - trailing > opts_.max_message) {
      fail(bytes, i, "message larger than " + describe_size(opts_.max_message), out);
      continue;
    }
    if (parser_.done()) {
      Frame f;
      f.kind = Frame::Kind::Value;
      f.value = parser_.release();
      parser_.reset();
      size_ = 0;
      state_ = State::Between;
      if (!avm::json::finite_numbers(f.value)) {
        // Boost.JSON read a number like 1e400 as infinity; written again it
        // would be `Infinity`, which is not JSON. QEMU never sends one.
        fail("malformed JSON (a number beyond the range of a double) in the message before " +
                 excerpt(bytes, i),
             out);
        continue;
      }
      out.push_back(std::move(f));
    }
  }
}

}  // namespace avm::qmp
