// Base64 as guest-exec carries stdin, stdout and stderr. Decoding never
// throws; bytes encode and decode back unchanged; and text that decodes
// re-encodes to text that decodes to the same bytes.
#include <string>

#include "fuzz.h"
#include "util/base64.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace avm;
  std::string_view in = avm::fuzz::as_text(data, size);

  std::string enc = base64_encode(in);
  FUZZ_CHECK(enc.size() == (in.size() + 2) / 3 * 4);
  auto dec = base64_decode(enc);
  FUZZ_CHECK(dec && *dec == in);

  if (auto bytes = base64_decode(in)) {
    FUZZ_CHECK(bytes->size() <= in.size() / 4 * 3);
    auto again = base64_decode(base64_encode(*bytes));
    FUZZ_CHECK(again && *again == *bytes);
  }
  return 0;
}
