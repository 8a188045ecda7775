// Bytes from the guest agent's socket: framed as QgaClient frames them
// (0xFF sentinels reset the parser; after an error, bytes are discarded up to
// the next 0xFF), each message classified and run through every typed
// parser. See stream.h for the properties.
#include "stream.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace avm::fuzz;
  std::string_view bytes = as_text(data, size);
  FramerOptions qga;
  qga.sentinel = true;
  check_stream(bytes, qga, false, true);  // a fresh connection
  check_stream(bytes, qga, true, false);  // after guest-sync-delimited: stale until 0xFF
  FramerOptions small = qga;
  small.max_message = 512;
  small.max_depth = 8;
  check_stream(bytes, small, false, false);
  return 0;
}
