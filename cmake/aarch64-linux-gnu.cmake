# Cross-compiling agent-vm for Linux aarch64 hosts on a Debian x86_64 machine,
# with Debian's cross compiler and the arm64 libraries installed side by side
# with the native ones (multiarch):
#
#   sudo dpkg --add-architecture arm64 && sudo apt-get update
#   sudo apt-get install g++-aarch64-linux-gnu libboost1.81-dev:arm64 \
#     libboost-json1.81-dev:arm64 libgit2-1.5:arm64 libssh-dev:arm64 libssl-dev:arm64
#   cmake -S . -B build-aarch64 -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
#     -DAGENT_VM_BUILD_TESTS=OFF -DAGENT_VM_BUILD_BENCH=OFF
#   cmake --build build-aarch64 --target agent-vm
#
# (scripts/setup --cross-aarch64 does the apt part and turns the test on.) libgit2-dev:arm64 is not
# installed: it conflicts with the native one, and cmake/Dependencies.cmake
# uses the native headers with the arm64 runtime library instead. CLI11 and
# Catch2 are header-only (Architecture: all / Multi-Arch: foreign).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
# Debian's multiarch folders: /usr/lib/aarch64-linux-gnu (libraries, CMake
# package configs, pkg-config files) and /usr/include/aarch64-linux-gnu.
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
# pkg-config reads the arm64 .pc files only, never the build machine's.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
# Programs run on the build machine; libraries and packages are the target's.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
