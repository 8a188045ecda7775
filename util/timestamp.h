// Wall-clock timestamps as meta.json, manifests and lock files record them.
#pragma once

#include <string>

namespace avm {

// Now, in UTC ISO-8601 to the second: "2024-05-01T12:34:56Z".
std::string utc_now_iso8601();
// Now, in UTC to the millisecond, for logs: "2024-05-01T12:34:56.789Z".
std::string utc_now_ms();

}  // namespace avm
