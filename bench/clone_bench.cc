// Clones one repository with the product's libgit2 clone (sessions/clone.h),
// exactly as agent-spawn does, and prints how long it took. bench/run times
// this process against `git clone` of the same URL, side by side.
//   bench_clone URL DEST [REF]
// Prints one JSON line: {"seconds": S, "commit": "...", "checked_out": "..."}.
#include <chrono>
#include <cstdio>
#include <exception>
#include <string>

#include "sessions/clone.h"

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4) {
    std::fprintf(stderr, "usage: bench_clone URL DEST [REF]\n");
    return 2;
  }
  try {
    avm::sessions::CloneOptions o;
    if (argc == 4) o.ref = argv[3];
    auto t0 = std::chrono::steady_clock::now();
    auto r = avm::sessions::clone_repo(argv[1], argv[2], o);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("{\"seconds\": %.6f, \"commit\": \"%s\", \"checked_out\": \"%s\"}\n", s, r.commit.c_str(),
                r.checked_out.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_clone: %s\n", e.what());
    return 1;
  }
}
