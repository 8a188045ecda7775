// Base64 (RFC 4648, with padding), as guest-exec carries input and output
// and known_hosts lines carry keys.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace avm {

std::string base64_encode(std::string_view bytes);
// nullopt when `text` is not valid base64 (whitespace is skipped).
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace avm
