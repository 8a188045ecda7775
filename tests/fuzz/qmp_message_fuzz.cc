// One message, as the framer hands it on: parsed as JSON (any JSON; the
// framer's checks are qmp_stream's business), classified, and run through
// every typed QMP and QGA parser and event view. The same checks as
// qmp_stream without the cost of framing each input several ways, so the
// fuzzer spends its time inside the typed parsers. See stream.h.
#include "stream.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace avm::fuzz;
  boost::json::parse_options opts;
  opts.max_depth = FramerOptions{}.max_depth;
  boost::json::error_code ec;
  boost::json::value v = boost::json::parse(as_text(data, size), ec, {}, opts);
  if (ec || !finite_numbers(v)) return 0;  // the framer refuses these
  exercise_message(v);
  return 0;
}
