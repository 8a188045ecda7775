// Transcripts recorded from the real QEMU (tests/unit/fixtures/qmp/*.txt,
// written by record.sh there) and a replayer that plays the server's side.
#pragma once

#include <boost/json/value.hpp>
#include <cstddef>
#include <string>
#include <vector>

#include "fake_server.h"

namespace avm::qmp::test {

struct Step {
  enum class Kind { Client, ClientRaw, Server, ServerRaw, Close };
  Kind kind;
  std::string text;         // the line's payload (JSON text, or raw bytes decoded from hex)
  boost::json::value json;  // Client/Server
};

struct Transcript {
  std::string name;
  std::string eol = "\r\n";
  std::vector<Step> steps;

  static Transcript load(const std::string& file);  // under fixtures/qmp/
  // The server's reply (the message with an id) to the nth request for `command`.
  boost::json::value reply_to(const std::string& command, int nth = 0) const;
  // Every message the server sent that is an event.
  std::vector<boost::json::value> events() const;
  const Step& greeting() const;
};

struct ReplayOptions {
  // Send all server messages between two client messages in one write.
  bool merge = false;
  // Cut every server write into pieces of this many bytes, each read by the
  // client before the next is sent (0: whole).
  std::size_t split = 0;
  // Stop after this many client requests have been answered (for tests
  // that continue by hand); npos: play everything.
  std::size_t stop_after_requests = static_cast<std::size_t>(-1);
};

// Plays the server's side: checks each client message against the recorded
// one (command and arguments; ids are renumbered) and answers as recorded.
void replay(FakeConn& conn, const Transcript& t, const ReplayOptions& opts = {});

}  // namespace avm::qmp::test
