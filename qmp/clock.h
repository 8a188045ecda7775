// The clock and unit of every deadline in qmp/.
#pragma once

#include <chrono>

namespace avm::qmp {

using Clock = std::chrono::steady_clock;
using Ms = std::chrono::milliseconds;

// Milliseconds left until `deadline`; zero once it has passed.
inline Ms remaining(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<Ms>(deadline - Clock::now());
  return left.count() > 0 ? left : Ms(0);
}

inline Ms elapsed_since(Clock::time_point start) {
  return std::chrono::duration_cast<Ms>(Clock::now() - start);
}

}  // namespace avm::qmp
