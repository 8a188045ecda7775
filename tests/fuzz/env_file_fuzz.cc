// The session's env file (KEY=VALUE lines for the guest). parse_env reads
// whatever is there without throwing; what it returns, render_env writes
// back to the same variables unless a value holds a byte a line cannot
// carry; and any variables render_env accepts parse back unchanged.
#include <string>

#include "fuzz.h"
#include "sessions/env_file.h"
#include "util/error.h"

namespace {

bool one_line(const std::string& v) { return v.find_first_of(std::string("\n\r\0", 3)) == std::string::npos; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace avm::sessions;
  std::string_view text = avm::fuzz::as_text(data, size);

  // Reading a file.
  EnvVars vars = parse_env(text);
  bool writable = true;
  for (const auto& [k, v] : vars) {
    FUZZ_CHECK(is_valid_env_name(k));
    FUZZ_CHECK(v.find('\n') == std::string::npos);
    writable = writable && one_line(v);
  }
  try {
    std::string again = render_env(vars);
    FUZZ_CHECK(writable);
    FUZZ_CHECK(parse_env(again) == vars);
  } catch (const avm::Error&) {
    FUZZ_CHECK(!writable);
  }

  // Writing one: the input read as NAME NUL VALUE NUL NAME NUL VALUE ...
  EnvVars mine;
  std::size_t at = 0;
  while (at < text.size()) {
    std::size_t a = text.find('\0', at);
    std::string name(text.substr(at, a == std::string_view::npos ? std::string_view::npos : a - at));
    std::string value;
    at = a == std::string_view::npos ? text.size() : a + 1;
    if (at < text.size()) {
      std::size_t b = text.find('\0', at);
      value = std::string(text.substr(at, b == std::string_view::npos ? std::string_view::npos : b - at));
      at = b == std::string_view::npos ? text.size() : b + 1;
    }
    mine.emplace_back(std::move(name), std::move(value));
  }
  std::string rendered;
  try {
    rendered = render_env(mine);
  } catch (const avm::Error&) {
    bool bad = false;
    for (const auto& [k, v] : mine) bad = bad || !is_valid_env_name(k) || !one_line(v);
    FUZZ_CHECK(bad);
    return 0;
  }
  FUZZ_CHECK(parse_env(rendered) == mine);
  return 0;
}
