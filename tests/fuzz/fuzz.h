// Shared by the fuzz targets (tests/fuzz/<name>_fuzz.cc): a check that
// aborts (so libFuzzer keeps the input as a crash), and a deterministic way
// to cut an input into chunks.
#pragma once

#include <boost/json/value.hpp>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

// A property the parser promises. On failure: say which, then abort, which
// libFuzzer reports as a crash and saves the input.
#define FUZZ_CHECK(cond)                                                              \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      std::fprintf(stderr, "fuzz property failed: %s\n  at %s:%d\n", #cond, __FILE__, \
                   __LINE__);                                                         \
      std::abort();                                                                   \
    }                                                                                 \
  } while (0)

namespace avm::fuzz {

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// FNV-1a: a seed that depends on the whole input, so the same input is
// always cut the same way (a crash reproduces from the file alone).
inline std::uint64_t hash(std::string_view s) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

// Chunk lengths that add up to `size`: 1..max each, from a splitmix64 stream.
inline std::vector<std::size_t> cuts(std::size_t size, std::uint64_t seed, std::size_t max) {
  std::vector<std::size_t> out;
  std::uint64_t x = seed;
  for (std::size_t done = 0; done < size;) {
    x += 0x9e3779b97f4a7c15ull;
    std::uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    std::size_t n = 1 + static_cast<std::size_t>(z % max);
    if (n > size - done) n = size - done;
    out.push_back(n);
    done += n;
  }
  return out;
}

// Equal values, except that doubles may differ in their last bits: Boost.JSON
// 1.81 parses numbers imprecisely (1.7915606184467442E39 reads back one ulp
// off what it was written from; precise parsing came in 1.83), so a double
// written and read again, or read from differently cut chunks, may move.
inline bool near_equal(const boost::json::value& a, const boost::json::value& b) {
  if (a.is_double() && b.is_double()) {
    double x = a.get_double(), y = b.get_double();
    return x == y || std::fabs(x - y) <= 8 * 2.220446049250313e-16 * std::fmax(std::fabs(x), std::fabs(y));
  }
  if (a.kind() != b.kind()) return false;
  if (const auto* o = a.if_object()) {
    const auto& p = b.get_object();
    if (o->size() != p.size()) return false;
    for (auto i = o->begin(), j = p.begin(); i != o->end(); ++i, ++j)
      if (i->key() != j->key() || !near_equal(i->value(), j->value())) return false;
    return true;
  }
  if (const auto* x = a.if_array()) {
    const auto& y = b.get_array();
    if (x->size() != y.size()) return false;
    for (std::size_t i = 0; i < x->size(); ++i)
      if (!near_equal((*x)[i], y[i])) return false;
    return true;
  }
  return a == b;
}

}  // namespace avm::fuzz
