#include "launcher/host.h"

#include <sys/stat.h>

#include <boost/json.hpp>
#include <cstdio>

#include "launcher/vm_spec.h"
#include "util/error.h"
#include "util/file.h"
#include "util/platform.h"
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
  // qemu-system-aarch64 (arm64 images) comes in Debian's qemu-system-arm.
  std::string package = qemu.find("aarch64") != std::string::npos ? "qemu-system-arm" : "qemu-system-x86";
  if (!path)
    throw Error(qemu + " was not found in PATH",
                "install QEMU: sudo apt-get install " + package + " (or run scripts/setup)");
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
                "install a newer " + package);
  info.sandbox = platform::qemu_sandbox_possible() &&
                 run({path->string(), "-sandbox", "on", "-version"}, o).exit_code == 0;
  return info;
}

namespace {

namespace json = boost::json;

// The cache is a convenience: any failure to read or write it means asking
// again, never an error.
std::optional<json::object> load_cache(const std::filesystem::path& file, const std::string& key) {
  try {
    auto text = read_file_if_exists(file);
    if (!text) return std::nullopt;
    json::value v = json::parse(*text);
    if (!v.is_object() || v.as_object().if_contains("key") == nullptr ||
        v.as_object().at("key") != json::value(key))
      return std::nullopt;
    return v.as_object();
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

void save_cache(const std::filesystem::path& file, json::object o) {
  try {
    make_private_dir(file.parent_path());
    write_file_atomic(file, json::serialize(o) + "\n", 0644);
  } catch (const std::exception&) {
  }
}

}  // namespace

QemuInfo inspect_qemu_cached(const std::filesystem::path& cache_file, const std::string& qemu) {
  auto path = find_program(qemu);
  struct stat st {};
  if (!path || ::stat(path->c_str(), &st) != 0) return inspect_qemu(qemu);  // its error names the fix
  std::string key = path->string() + "|" + std::to_string(st.st_ino) + "|" + std::to_string(st.st_size) + "|" +
                    std::to_string(st.st_ctim.tv_sec) + "." + std::to_string(st.st_ctim.tv_nsec);
  if (auto o = load_cache(cache_file, key)) {
    try {
      QemuInfo info;
      info.path = *path;
      info.version = json::value_to<std::string>(o->at("version"));
      info.package = json::value_to<std::string>(o->at("package"));
      info.major = json::value_to<int>(o->at("major"));
      info.minor = json::value_to<int>(o->at("minor"));
      info.micro = json::value_to<int>(o->at("micro"));
      info.sandbox = o->at("sandbox").as_bool();
      return info;
    } catch (const std::exception&) {
    }
  }
  QemuInfo info = inspect_qemu(path->string());
  save_cache(cache_file, {{"key", key},
                          {"version", info.version},
                          {"package", info.package},
                          {"major", info.major},
                          {"minor", info.minor},
                          {"micro", info.micro},
                          {"sandbox", info.sandbox}});
  return info;
}

std::optional<unsigned long> host_tsc_khz_cached(const std::filesystem::path& cache_file) {
  std::string boot_id = platform::boot_id();
  if (boot_id.empty()) return host_tsc_khz();
  if (auto o = load_cache(cache_file, boot_id)) {
    try {
      if (o->at("khz").is_null()) return std::nullopt;
      return json::value_to<unsigned long>(o->at("khz"));
    } catch (const std::exception&) {
    }
  }
  auto khz = host_tsc_khz();
  json::object o{{"key", boot_id}};
  if (khz)
    o["khz"] = *khz;
  else
    o["khz"] = nullptr;
  save_cache(cache_file, std::move(o));
  return khz;
}

}  // namespace avm::launcher
