#include "launcher/host.h"

#include <algorithm>
#include <catch2/catch.hpp>

#include "util/error.h"
#include "util/file.h"
#include "util/strings.h"
#include "util/temp_dir.h"

using namespace avm::launcher;
namespace fs = std::filesystem;

TEST_CASE("QEMU's version line is parsed", "[host]") {
  QemuInfo i;
  REQUIRE(parse_qemu_version("QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\n"
                             "Copyright (c) 2003-2022 Fabrice Bellard\n",
                             i));
  CHECK(i.version == "7.2.22");
  CHECK(i.major == 7);
  CHECK(i.minor == 2);
  CHECK(i.micro == 22);
  CHECK(i.package == "Debian 1:7.2+dfsg-7+deb12u18+b3");
  QemuInfo j;
  REQUIRE(parse_qemu_version("QEMU emulator version 8.0.0\n", j));
  CHECK(j.package.empty());
  CHECK_FALSE(parse_qemu_version("bash: qemu: command not found", j));
}

TEST_CASE("the installed QEMU is inspected", "[host]") {
  QemuInfo i = inspect_qemu();
  CHECK(i.major >= 5);
  CHECK_FALSE(i.version.empty());
  CHECK_THROWS_WITH(inspect_qemu("no-such-qemu-binary"), Catch::Contains("not found"));
}

TEST_CASE("QEMU is asked once while its binary stays the same file", "[host]") {
  avm::TempDir tmp;
  fs::path qemu = tmp.path() / "qemu-system-x86_64";
  fs::path calls = tmp.path() / "calls";
  auto install = [&](const std::string& version) {
    // A stand-in that answers like QEMU and counts its runs.
    avm::write_file_atomic(qemu,
                           "#!/bin/sh\necho run >>'" + calls.string() + "'\n"
                           "echo 'QEMU emulator version " + version + " (test)'\n",
                           0755);
  };
  auto runs = [&] {
    std::string text = avm::read_file(calls);
    return std::count(text.begin(), text.end(), '\n');
  };
  fs::path cache = tmp.path() / "cache" / "qemu.json";
  install("7.2.1");
  QemuInfo a = inspect_qemu_cached(cache, qemu.string());
  CHECK(a.version == "7.2.1");
  CHECK(a.package == "test");
  CHECK(a.sandbox);
  CHECK(runs() == 2);  // -version, -sandbox on -version
  QemuInfo b = inspect_qemu_cached(cache, qemu.string());
  CHECK(runs() == 2);
  CHECK(b.version == a.version);
  CHECK(b.package == a.package);
  CHECK(b.minor == 2);
  CHECK(b.micro == 1);
  CHECK(b.sandbox);
  CHECK(b.path == qemu);

  // An upgrade replaces the file: asked again.
  install("8.0.0");
  CHECK(inspect_qemu_cached(cache, qemu.string()).version == "8.0.0");
  CHECK(runs() == 4);

  // A cache that cannot be read is asked past, not trusted or fatal.
  avm::write_file_atomic(cache, "{not json");
  CHECK(inspect_qemu_cached(cache, qemu.string()).version == "8.0.0");
  CHECK(runs() == 6);
  CHECK(inspect_qemu_cached(cache, qemu.string()).major == 8);
  CHECK(runs() == 6);
}

TEST_CASE("the host's TSC frequency is measured once per boot", "[host]") {
  avm::TempDir tmp;
  fs::path cache = tmp.path() / "tsc.json";
  auto first = host_tsc_khz_cached(cache);
  REQUIRE(fs::exists(cache));
  std::string boot_id = avm::trim(avm::read_file("/proc/sys/kernel/random/boot_id"));
  CHECK(avm::read_file(cache).find(boot_id) != std::string::npos);
  CHECK(host_tsc_khz_cached(cache) == first);
  if (first) {
    // What is cached is what is used: a planted value for this boot comes back.
    avm::write_file_atomic(cache, "{\"key\":\"" + boot_id + "\",\"khz\":1234567}");
    CHECK(host_tsc_khz_cached(cache) == 1234567ul);
  }
  // Another boot's value is measured anew.
  avm::write_file_atomic(cache, "{\"key\":\"another-boot\",\"khz\":1}");
  CHECK(host_tsc_khz_cached(cache) != 1ul);
}
