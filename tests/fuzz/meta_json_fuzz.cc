// meta.json as found on disk, whatever it holds. parse_meta promises to
// throw MetaCorrupt or MetaUnknownSchema and nothing else; a file it
// accepts must survive format_meta/parse_meta unchanged (the store rewrites
// meta.json whole on every change, so a lossy round trip loses history).
#include <boost/json.hpp>
#include <string>

#include "fuzz.h"
#include "sessions/meta.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace avm::sessions;
  std::string_view text = avm::fuzz::as_text(data, size);
  Meta meta;
  try {
    meta = parse_meta(text);
  } catch (const MetaCorrupt& e) {
    FUZZ_CHECK(!e.reason().empty());
    return 0;
  } catch (const MetaUnknownSchema& e) {
    FUZZ_CHECK(e.found() != kMetaSchema);
    return 0;
  }
  // Anything else thrown above escapes: libFuzzer reports it as a crash.

  std::string written = format_meta(meta);
  Meta reread;
  try {
    reread = parse_meta(written);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "format_meta wrote what parse_meta refuses: %s\n%s\n", e.what(),
                 written.c_str());
    FUZZ_CHECK(!"format_meta output parses");
  }
  FUZZ_CHECK(reread == meta);
  FUZZ_CHECK(format_meta(reread) == written);
  FUZZ_CHECK(boost::json::value_to<Meta>(boost::json::value_from(meta)) == meta);
  return 0;
}
