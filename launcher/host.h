// What the host's QEMU can do, asked of QEMU itself.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace avm::launcher {

struct QemuInfo {
  std::filesystem::path path;
  std::string version;   // "7.2.22"
  std::string package;   // "Debian 1:7.2+dfsg-7+deb12u18+b3"
  int major = 0, minor = 0, micro = 0;
  bool sandbox = false;  // built with seccomp: -sandbox on is accepted
};

// Runs `<qemu> -version` and `<qemu> -sandbox on -version`. Throws avm::Error
// naming the package when QEMU is missing or too old (microvm with ACPI needs
// QEMU 5.2 or later).
QemuInfo inspect_qemu(const std::string& qemu = "qemu-system-x86_64");

// inspect_qemu, remembered in `cache_file` while the binary is the same file
// (path, inode, size, change time): each QEMU run loads ~100 libraries, which
// a spawn should not pay twice for a fact that changes with an upgrade only.
QemuInfo inspect_qemu_cached(const std::filesystem::path& cache_file,
                             const std::string& qemu = "qemu-system-x86_64");

// host_tsc_khz (vm_spec.h), measured once per host boot (the kernel's boot_id)
// and remembered in `cache_file`: the measurement sleeps 60 ms.
std::optional<unsigned long> host_tsc_khz_cached(const std::filesystem::path& cache_file);

// Parses the first line of `qemu -version`; false when it is not QEMU's.
bool parse_qemu_version(const std::string& text, QemuInfo& out);

}  // namespace avm::launcher
