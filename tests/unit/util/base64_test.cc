#include "util/base64.h"

#include <catch2/catch.hpp>

using namespace avm;

TEST_CASE("base64 round-trips every length and byte", "[base64]") {
  // RFC 4648 test vectors.
  CHECK(base64_encode("") == "");
  CHECK(base64_encode("f") == "Zg==");
  CHECK(base64_encode("fo") == "Zm8=");
  CHECK(base64_encode("foo") == "Zm9v");
  CHECK(base64_encode("foobar") == "Zm9vYmFy");
  CHECK(base64_encode(std::string("\xff\xfe\x00", 3)) == "//4A");
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (std::size_t n = 0; n <= all.size(); n += 37) CHECK(base64_decode(base64_encode(all.substr(0, n))) == all.substr(0, n));
  CHECK(base64_decode("Zm9v\nYmFy") == "foobar");
}

TEST_CASE("base64_decode rejects what is not base64", "[base64]") {
  CHECK_FALSE(base64_decode("Zm9"));
  CHECK_FALSE(base64_decode("Zm=v"));
  CHECK_FALSE(base64_decode("Z==="));
  CHECK_FALSE(base64_decode("Zm9v!"));
}
