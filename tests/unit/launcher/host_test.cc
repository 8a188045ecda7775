#include "launcher/host.h"

#include <catch2/catch.hpp>

#include "util/error.h"

using namespace avm::launcher;

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
