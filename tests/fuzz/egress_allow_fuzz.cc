// The restricted network's allowlist. normalize_allow_entry checks a
// --allow-host value (throwing avm::Error for anything else); egress_allowed
// decides each CONNECT. Input: "<entry>\n<host>\n<port>".
// Properties: a normalised entry is accepted again unchanged; it lets its
// own host through (any case, trailing dot) on its own port and no other;
// and a CONNECT it lets through is to that host, or for "*.domain" to a
// name that ends in ".domain".
#include <cctype>
#include <string>

#include "fuzz.h"
#include "launcher/egress.h"
#include "util/error.h"
#include "util/strings.h"

namespace {

std::string lower(std::string_view s) {
  std::string out = avm::lower_ascii(s);
  if (!out.empty() && out.back() == '.') out.pop_back();
  return out;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace avm::launcher;
  std::string_view in = avm::fuzz::as_text(data, size);
  std::string_view entry = in.substr(0, in.find('\n'));
  std::string_view rest = entry.size() < in.size() ? in.substr(entry.size() + 1) : std::string_view();
  std::string_view host = rest.substr(0, rest.find('\n'));
  std::string_view port_text = host.size() < rest.size() ? rest.substr(host.size() + 1) : std::string_view();
  unsigned port = 443;
  if (!port_text.empty()) {
    port = 0;
    for (char c : port_text.substr(0, 5)) port = port * 10 + static_cast<unsigned char>(c) % 10;
    port %= 65536;
  }

  std::string norm;
  try {
    norm = normalize_allow_entry(entry);
  } catch (const avm::Error&) {
    return 0;
  }
  std::string again;
  try {
    again = normalize_allow_entry(norm);
  } catch (const avm::Error& e) {
    std::fprintf(stderr, "'%s' normalised to '%s', which is refused: %s\n", std::string(entry).c_str(),
                 norm.c_str(), e.what());
    FUZZ_CHECK(!"a normalised entry is accepted");
  }
  FUZZ_CHECK(again == norm);
  FUZZ_CHECK(lower(norm) == norm);

  // The entry's own host and port.
  std::string ehost = norm;
  unsigned eport = 443;
  if (auto colon = norm.rfind(':'); colon != std::string::npos) {
    ehost = norm.substr(0, colon);
    eport = static_cast<unsigned>(std::stoul(norm.substr(colon + 1)));
  }
  FUZZ_CHECK(!ehost.empty());
  EgressPolicy policy{{norm}};
  bool wildcard = ehost.rfind("*.", 0) == 0;
  std::string example = wildcard ? "x" + ehost.substr(1) : ehost;
  FUZZ_CHECK(egress_allowed(policy, example, static_cast<std::uint16_t>(eport)));
  FUZZ_CHECK(egress_allowed(policy, upper(example) + ".", static_cast<std::uint16_t>(eport)));
  FUZZ_CHECK(!egress_allowed(policy, example, static_cast<std::uint16_t>(eport % 65535 + 1)));
  if (wildcard) FUZZ_CHECK(!egress_allowed(policy, ehost.substr(2), static_cast<std::uint16_t>(eport)));

  if (egress_allowed(policy, host, static_cast<std::uint16_t>(port))) {
    FUZZ_CHECK(port == eport);
    std::string h = lower(host);
    if (wildcard)
      FUZZ_CHECK(h.size() > ehost.size() - 1 && h.ends_with(ehost.substr(1)));
    else
      FUZZ_CHECK(h == ehost);
  }
  return 0;
}
