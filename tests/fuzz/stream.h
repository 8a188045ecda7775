// What qmp_stream_fuzz and qga_stream_fuzz check: a byte stream from QEMU
// or the guest agent goes through the framer as the clients feed it, and
// every message through the classifier and every typed parser.
//
// Properties (beyond "no crash, no leak, no UB, nothing thrown but
// ProtocolError"):
//  - framing does not depend on how the bytes arrive: whole, in random
//    chunks, or byte by byte give the same frames and end in the same state;
//  - a Value frame is always an object; in QMP mode nothing follows an
//    Error; in QGA mode only a Sentinel ends the discarding after one;
//  - pretty_json of a message parses back to the same value (doubles to
//    within a few ulps: see near_equal);
//  - an event printed with to_json reads back with parse_event unchanged;
//  - an error reply surfaces as a CommandError with its class and desc.
#pragma once

#include <boost/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz.h"
#include "json/text.h"
#include "qmp/errors.h"
#include "qmp/events.h"
#include "qmp/framer.h"
#include "qmp/message.h"
#include "qmp/qga_types.h"
#include "qmp/qmp_types.h"

namespace avm::fuzz {

namespace json = boost::json;
using namespace avm::qmp;
using avm::json::finite_numbers;

// Runs `f`; a ProtocolError is a parser's proper answer to bad input.
// Anything else thrown escapes, and libFuzzer reports it as a crash.
template <class F>
void protocol(F&& f) {
  try {
    f();
  } catch (const ProtocolError&) {
  }
}

// Runs `f`, which must not throw at all.
template <class F>
void must(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "unexpected exception: %s\n", e.what());
    FUZZ_CHECK(!"must not throw");
  }
}

struct Framed {
  std::vector<Frame> frames;
  bool mid = false, poisoned = false, discarding = false;
};

inline Framed frame(std::string_view bytes, const FramerOptions& opts,
                    const std::vector<std::size_t>& chunks, bool discard_first) {
  Framer framer(opts);
  if (discard_first) framer.discard_until_sentinel();
  Framed out;
  std::size_t at = 0;
  for (std::size_t n : chunks) {
    framer.feed(bytes.substr(at, n), out.frames);
    at += n;
  }
  out.mid = framer.mid_message();
  out.poisoned = framer.poisoned();
  out.discarding = framer.discarding();
  return out;
}

// Same frames (kind and value; an error's text quotes the bytes around it,
// which depend on the chunk) and the same final state.
inline void same(const Framed& a, const Framed& b) {
  FUZZ_CHECK(a.frames.size() == b.frames.size());
  for (std::size_t i = 0; i < a.frames.size(); ++i) {
    FUZZ_CHECK(a.frames[i].kind == b.frames[i].kind);
    FUZZ_CHECK(near_equal(a.frames[i].value, b.frames[i].value));
  }
  FUZZ_CHECK(a.mid == b.mid);
  FUZZ_CHECK(a.poisoned == b.poisoned);
  FUZZ_CHECK(a.discarding == b.discarding);
}

inline void frame_invariants(const Framed& f, const FramerOptions& opts) {
  bool after_error = false;
  for (const Frame& fr : f.frames) {
    switch (fr.kind) {
      case Frame::Kind::Value:
        FUZZ_CHECK(fr.value.is_object());
        FUZZ_CHECK(!after_error);  // QMP: poisoned; QGA: discarding until 0xFF
        break;
      case Frame::Kind::Sentinel:
        FUZZ_CHECK(opts.sentinel);
        after_error = false;
        break;
      case Frame::Kind::Error:
        FUZZ_CHECK(!fr.error.empty());
        FUZZ_CHECK(!after_error);  // one error, then silence until a sentinel
        after_error = true;
        break;
    }
  }
  if (!opts.sentinel) FUZZ_CHECK(!f.discarding);
  if (opts.sentinel) FUZZ_CHECK(!f.poisoned);
}

inline void exercise_event(const Event& e) {
  // to_json is how `agent-vm qmp` prints events; parse_event reads them.
  must([&] {
    Event back = parse_event(to_json(e));
    FUZZ_CHECK(back.name == e.name);
    FUZZ_CHECK(near_equal(back.data, e.data));
    FUZZ_CHECK(back.ts_seconds == e.ts_seconds);
    FUZZ_CHECK(back.ts_micros == e.ts_micros);
  });
  // Every typed view, each given this event's data under its own name.
  auto as = [&](const char* name) {
    Event copy = e;
    copy.name = name;
    return copy;
  };
  protocol([&] { ShutdownEvent::from(e); });
  protocol([&] { ShutdownEvent::from(as("SHUTDOWN")); });
  protocol([&] { ResetEvent::from(as("RESET")); });
  protocol([&] { StopEvent::from(as("STOP")); });
  protocol([&] { ResumeEvent::from(as("RESUME")); });
  protocol([&] { PowerdownEvent::from(as("POWERDOWN")); });
  protocol([&] { GuestPanickedEvent::from(as("GUEST_PANICKED")); });
  protocol([&] { DeviceDeletedEvent::from(as("DEVICE_DELETED")); });

  EventBuffer buffer(2);
  EventCursor before = buffer.cursor();
  for (int i = 0; i < 3; ++i) buffer.push(e);
  FUZZ_CHECK(buffer.size() == 2 && buffer.dropped() == 1);
  auto found = buffer.find(e.name, before);
  FUZZ_CHECK(found && found->seq == 2);
}

template <class T>
void typed(const json::value& v) {
  protocol([&] { json::value_to<T>(v); });
}

// As QmpClient's typed_list: a reply that must be an array of T.
template <class T>
void typed_list(const json::value& v) {
  protocol([&] {
    if (!v.is_array()) throw ProtocolError("not an array");
    for (const auto& item : v.get_array()) json::value_to<T>(item);
  });
}

// A reply's result through every typed parser of QMP and QGA: the fuzzer
// does not know which command it answers, so each gets a go.
inline void exercise_result(const json::value& v) {
  protocol([&] {
    StatusInfo s = json::value_to<StatusInfo>(v);
    StatusInfo back = json::value_to<StatusInfo>(json::value_from(s));
    FUZZ_CHECK(back.status == s.status && back.status_name == s.status_name &&
               back.running == s.running && back.singlestep == s.singlestep);
  });
  typed<VersionInfo>(v);
  typed<NameInfo>(v);
  typed<KvmInfo>(v);
  typed_list<ObjectProperty>(v);
  typed_list<ChardevInfo>(v);
  protocol([&] {
    GuestInfo g = json::value_to<GuestInfo>(v);
    // supports() answers for the first entry of a name.
    for (std::size_t i = 0; i < g.supported_commands.size(); ++i) {
      const auto& c = g.supported_commands[i];
      bool first = true;
      for (std::size_t j = 0; j < i; ++j) first = first && g.supported_commands[j].name != c.name;
      if (first) FUZZ_CHECK(g.supports(c.name) == c.enabled);
    }
  });
  typed<OsInfo>(v);
  protocol([&] {
    ExecStatus s = json::value_to<ExecStatus>(v);
    if (s.exited) exec_result(std::move(s));  // what QgaClient::exec returns
  });
  protocol([&] { fields(v, "reply").int64("pid"); });  // guest-exec
}

inline void exercise_message(const json::value& v) {
  // pretty_json is what `agent-vm qmp` prints: the same value, indented.
  must([&] {
    json::parse_options deep;
    deep.max_depth = 4096;
    json::error_code ec;
    json::value back = json::parse(avm::json::pretty_json(v), ec, {}, deep);
    FUZZ_CHECK(!ec);
    FUZZ_CHECK(near_equal(back, v));
  });

  Message m;
  try {
    m = classify(v);
  } catch (const ProtocolError&) {
    return;
  }
  switch (m.kind) {
    case Message::Kind::Greeting:
      typed<Greeting>(m.greeting);
      return;
    case Message::Kind::Event:
      exercise_event(m.event);
      return;
    case Message::Kind::Reply: {
      (void)m.reply.our_id();
      if (!m.reply.ok) {
        try {
          result_or_throw(m.reply, "cmd", "peer");
          FUZZ_CHECK(!"an error reply must throw");
        } catch (const CommandError& e) {
          FUZZ_CHECK(e.error_class() == m.reply.error_class);
          FUZZ_CHECK(e.desc() == m.reply.error_desc);
        }
        return;
      }
      exercise_result(result_or_throw(m.reply, "cmd"));
      return;
    }
  }
}

// Frames `bytes` whole, in chunks and byte by byte; checks they agree; and
// (when `messages`) runs every message through the parsers.
inline void check_stream(std::string_view bytes, const FramerOptions& opts, bool discard_first,
                         bool messages) {
  Framed whole = frame(bytes, opts, {bytes.size()}, discard_first);
  frame_invariants(whole, opts);
  same(whole, frame(bytes, opts, cuts(bytes.size(), hash(bytes), 64), discard_first));
  if (bytes.size() <= 1024)
    same(whole, frame(bytes, opts, std::vector<std::size_t>(bytes.size(), 1), discard_first));
  if (!messages) return;
  for (const Frame& f : whole.frames)
    if (f.kind == Frame::Kind::Value) exercise_message(f.value);
}

}  // namespace avm::fuzz
