// Shared by the fuzz targets (tests/fuzz/<name>_fuzz.cc): a check that
// aborts (so libFuzzer keeps the input as a crash), and a deterministic way
// to cut an input into chunks.
#pragma once

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

}  // namespace avm::fuzz
