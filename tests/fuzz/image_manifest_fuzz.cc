// An image's manifest.json. parse_manifest throws avm::Error (naming the
// field) for anything it cannot use; what it accepts names kernel, initrd
// and rootfs files inside the image folder, and nowhere else: a manifest
// from an imported folder must not point QEMU at a host file outside it.
// import_image writes the manifest it accepted into the store with
// json::serialize; load_image must be able to read that back.
// The folder (tests/fuzz/image) holds empty kernel, initrd and rootfs files
// so that the fuzzer can reach acceptance.
#include <boost/json.hpp>
#include <filesystem>
#include <string>

#include "fuzz.h"
#include "launcher/image.h"
#include "util/error.h"

namespace fs = std::filesystem;

namespace {

void inside(const fs::path& file, const fs::path& dir) {
  const std::string& s = file.native();
  FUZZ_CHECK(s.find('\0') == std::string::npos);  // what QEMU's argv would carry
  fs::path rel = file.lexically_normal().lexically_relative(dir);
  FUZZ_CHECK(!rel.empty());
  FUZZ_CHECK(*rel.begin() != "..");
  FUZZ_CHECK(fs::is_regular_file(file));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace json = boost::json;
  json::error_code ec;
  json::value v = json::parse(json::string_view(reinterpret_cast<const char*>(data), size), ec);
  if (ec || !v.is_object()) return 0;  // load_image refuses these before parse_manifest
  const fs::path dir = AGENT_VM_FUZZ_IMAGE_DIR;
  avm::launcher::Image img;
  try {
    img = avm::launcher::parse_manifest(v.get_object(), dir, "image 'fuzz'");
  } catch (const avm::Error& e) {
    FUZZ_CHECK(std::string(e.what()).find("image 'fuzz'") != std::string::npos);
    return 0;
  }
  inside(img.kernel, img.dir);
  inside(img.initrd, img.dir);
  inside(img.rootfs, img.dir);
  FUZZ_CHECK(img.manifest == v.get_object());
  json::value stored = json::parse(json::serialize(img.manifest), ec);
  FUZZ_CHECK(!ec);
  FUZZ_CHECK(avm::fuzz::near_equal(stored, v));
  return 0;
}
