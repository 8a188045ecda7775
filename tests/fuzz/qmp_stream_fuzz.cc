// Bytes from QEMU's QMP socket: framed as QmpClient frames them (an error
// poisons the stream), each message classified and, when it is a reply or an
// event, run through every typed parser. See stream.h for the properties.
#include "stream.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace avm::fuzz;
  std::string_view bytes = as_text(data, size);
  check_stream(bytes, FramerOptions{}, false, true);  // as QmpClient
  // Limits small enough for the fuzzer to reach.
  FramerOptions small;
  small.max_message = 512;
  small.max_depth = 8;
  check_stream(bytes, small, false, false);
  return 0;
}
