# Every dependency is found the CMake way. When one is missing, configure
# stops with the Debian package that provides it, so the fix is one apt line.

function(agent_vm_missing what package)
  message(FATAL_ERROR
    "agent-vm: ${what} was not found.\n"
    "  Install it with:  sudo apt-get install ${package}\n"
    "  (or run scripts/setup, which installs every package the build needs)")
endfunction()

find_package(Boost 1.81 QUIET CONFIG COMPONENTS json)
if(NOT Boost_FOUND)
  agent_vm_missing("Boost 1.81 with Boost.JSON (Asio and Beast are header-only)"
                   "libboost1.81-dev libboost-json1.81-dev")
endif()

find_package(PkgConfig QUIET)
if(NOT PKG_CONFIG_FOUND)
  agent_vm_missing("pkg-config" "pkg-config")
endif()

pkg_check_modules(LIBGIT2 QUIET IMPORTED_TARGET libgit2>=1.1)
if(NOT LIBGIT2_FOUND AND CMAKE_CROSSCOMPILING AND CMAKE_LIBRARY_ARCHITECTURE)
  # Debian's libgit2-dev cannot be installed for a second architecture (its
  # libhttp-parser-dev is not Multi-Arch: same). Its headers are the same for
  # every architecture (libgit2-dev itself is Multi-Arch: same), so a cross
  # build takes them from the build machine's libgit2-dev and links the
  # target's runtime library (libgit2-1.5:<arch>) by its soname.
  find_path(AGENT_VM_GIT2_INCLUDE git2.h PATHS /usr/include NO_CMAKE_FIND_ROOT_PATH)
  find_library(AGENT_VM_GIT2_LIBRARY NAMES libgit2.so.1.5 git2
               PATHS /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE} NO_DEFAULT_PATH)
  if(AGENT_VM_GIT2_INCLUDE AND AGENT_VM_GIT2_LIBRARY)
    add_library(PkgConfig::LIBGIT2 INTERFACE IMPORTED)
    target_include_directories(PkgConfig::LIBGIT2 SYSTEM INTERFACE ${AGENT_VM_GIT2_INCLUDE})
    target_link_libraries(PkgConfig::LIBGIT2 INTERFACE ${AGENT_VM_GIT2_LIBRARY})
    set(LIBGIT2_FOUND TRUE)
  endif()
endif()
if(NOT LIBGIT2_FOUND)
  if(CMAKE_CROSSCOMPILING)
    agent_vm_missing("libgit2 for ${CMAKE_LIBRARY_ARCHITECTURE}"
                     "libgit2-dev libgit2-1.5:<arch> (see cmake/aarch64-linux-gnu.cmake)")
  endif()
  agent_vm_missing("libgit2 (pkg-config module libgit2)" "libgit2-dev")
endif()

pkg_check_modules(LIBSSH QUIET IMPORTED_TARGET libssh>=0.9)
if(NOT LIBSSH_FOUND)
  agent_vm_missing("libssh (pkg-config module libssh)" "libssh-dev")
endif()

find_package(CLI11 QUIET CONFIG)
if(NOT CLI11_FOUND)
  agent_vm_missing("CLI11" "libcli11-dev")
endif()

find_package(OpenSSL 3 QUIET)
if(NOT OPENSSL_FOUND)
  agent_vm_missing("OpenSSL 3 (TLS to the model API)" "libssl-dev")
endif()

find_package(Threads REQUIRED)

if(AGENT_VM_BUILD_TESTS)
  find_package(Catch2 2 QUIET CONFIG)
  if(NOT Catch2_FOUND)
    agent_vm_missing("Catch2 (v2, with its CMake config)" "catch2")
  endif()
endif()
