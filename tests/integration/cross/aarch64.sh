#!/usr/bin/env bash
# The host binary builds for Linux aarch64 hosts: configure with
# cmake/aarch64-linux-gnu.cmake (Debian's cross compiler, the arm64 libraries
# installed beside the native ones) into its own build folder, build
# agent-vm (not the tests), and check the result is an aarch64 executable
# linked against the arm64 libraries. Nothing runs it: no aarch64 machine here.
set -euo pipefail
src=${AGENT_VM_SOURCE:?run through ctest}
build=${AGENT_VM_CROSS_BUILD:?run through ctest (AGENT_VM_CROSS_BUILD names the build folder)}
fail() { echo "FAIL: $*" >&2; exit 1; }
log() { printf '[aarch64 %s] %s\n' "$(date +%T)" "$*" >&2; }

command -v aarch64-linux-gnu-g++ >/dev/null \
  || fail "aarch64-linux-gnu-g++ is missing: scripts/setup --cross-aarch64 installs the cross toolchain"
command -v file >/dev/null || fail "file is missing: apt-get install file"
for lib in libboost_json.so libssh.so libssl.so libgit2.so.1.5; do
  [ -e "/usr/lib/aarch64-linux-gnu/$lib" ] \
    || fail "/usr/lib/aarch64-linux-gnu/$lib is missing: scripts/setup --cross-aarch64 installs the arm64 libraries"
done

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
generator=()
[ -f "$build/CMakeCache.txt" ] || ! command -v ninja >/dev/null || generator=(-G Ninja)
t0=$SECONDS
# Unoptimised: the test is about the target (headers, libraries, nothing
# x86-only), not speed; -O0 compiles in about a third of Release's time.
cmake -S "$src" -B "$build" "${generator[@]}" "${launcher[@]}" -DCMAKE_BUILD_TYPE=None \
  -DCMAKE_CXX_FLAGS="-O0 -g0" \
  -DCMAKE_TOOLCHAIN_FILE="$src/cmake/aarch64-linux-gnu.cmake" \
  -DAGENT_VM_BUILD_TESTS=OFF -DAGENT_VM_BUILD_BENCH=OFF >"$build.configure.log" 2>&1 \
  || { cat "$build.configure.log" >&2; fail "configure for aarch64 failed"; }
log "configured in $((SECONDS - t0)) s"
t0=$SECONDS
cmake --build "$build" --target agent-vm -j "${AGENT_VM_CROSS_JOBS:-2}" >"$build.build.log" 2>&1 \
  || { tail -40 "$build.build.log" >&2; fail "the aarch64 build failed"; }
log "built in $((SECONDS - t0)) s"

bin="$build/commands/agent-vm"
what=$(file -b "$bin")
[[ "$what" == *"ELF 64-bit"*"ARM aarch64"* ]] || fail "file says '$what', not an ELF 64-bit ARM aarch64 executable"
log "ok: $what"
# Linked against the arm64 libraries, resolved by the cross toolchain's readelf.
needed=$(aarch64-linux-gnu-readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
for lib in libgit2.so.1.5 libssh.so.4 libssl.so.3 libboost_json.so.1.81.0; do
  [[ " $needed" == *" $lib "* ]] || fail "agent-vm does not link $lib (NEEDED: $needed)"
done
log "ok: links $needed"
echo "1 passed, 0 failed"
