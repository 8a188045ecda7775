#include "launcher/host.h"

#include <cstdio>

#include "util/error.h"
#include "util/process.h"
#include "util/strings.h"

namespace avm::launcher {

using namespace std::chrono_literals;

bool parse_qemu_version(const std::string& text, QemuInfo& out) {
  // "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)"
  const std::string marker = "QEMU emulator version ";
  auto p = text.find(marker);
  if (p == std::string::npos) return false;
  std::string rest = text.substr(p + marker.size());
  rest = rest.substr(0, rest.find('\n'));
  int maj = 0, min = 0, mic = 0;
  if (std::sscanf(rest.c_str(), "%d.%d.%d", &maj, &min, &mic) < 2) return false;
  out.major = maj;
  out.minor = min;
  out.micro = mic;
  out.version = rest.substr(0, rest.find(' '));
  auto open = rest.find('('), close = rest.rfind(')');
  out.package = (open != std::string::npos && close != std::string::npos && close > open)
                    ? rest.substr(open + 1, close - open - 1)
                    : "";
  return true;
}

QemuInfo inspect_qemu(const std::string& qemu) {
  auto path = find_program(qemu);
  if (!path)
    throw Error(qemu + " was not found in PATH",
                "install QEMU: sudo apt-get install qemu-system-x86 (or run scripts/setup)");
  QemuInfo info;
  info.path = *path;
  RunOptions o;
  o.timeout = 10s;
  o.merge_stderr = true;
  RunResult v = run({path->string(), "-version"}, o);
  if (v.exit_code != 0 || !parse_qemu_version(v.out, info))
    throw Error(path->string() + " -version did not answer like QEMU: " + trim(v.out));
  if (info.major < 5 || (info.major == 5 && info.minor < 2))
    throw Error("QEMU " + info.version + " is too old: microvm with ACPI needs 5.2 or later",
                "install a newer qemu-system-x86");
  info.sandbox = run({path->string(), "-sandbox", "on", "-version"}, o).exit_code == 0;
  return info;
}

}  // namespace avm::launcher
