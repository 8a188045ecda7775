#include "launcher/image.h"

#include <sys/stat.h>

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>

#include "util/error.h"
#include "util/file.h"
#include "util/temp_dir.h"

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace avm;
using namespace avm::launcher;

namespace {

// Points the image store at a fresh folder for one test.
struct Store {
  TempDir tmp{"image-test"};
  fs::path root = tmp.path() / "images";
  Store() { ::setenv("AGENT_VM_IMAGES", root.c_str(), 1); }
  ~Store() { ::unsetenv("AGENT_VM_IMAGES"); }
};

json::object good_manifest(const std::string& name = "default") {
  json::object m;
  m["schema"] = 1;
  m["name"] = name;
  m["source"] = "debian";
  m["kernel"] = "vmlinuz";
  m["initrd"] = "initrd.img";
  m["rootfs"] = "rootfs.squashfs";
  m["cmdline"] = "console=ttyS0 root=/dev/vda";
  m["opencode_version"] = "1.2.3";
  m["built"] = "2025-01-01T00:00:00Z";
  m["input_digest"] = "sha256:abc";
  return m;
}

void make_image(const fs::path& dir, const json::object& m) {
  fs::create_directories(dir);
  for (const char* f : {"vmlinuz", "initrd.img", "rootfs.squashfs"})
    write_file_atomic(dir / f, std::string("contents of ") + f);
  write_file_atomic(dir / "manifest.json", json::serialize(m));
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return std::string(e.what()) + " | hint: " + e.hint();
  }
  return "no error";
}

}  // namespace

TEST_CASE("a missing default image names the build command") {
  Store s;
  std::string e = error_of([] { load_image("default"); });
  CHECK_THAT(e, Catch::Contains("no guest image 'default'"));
  CHECK_THAT(e, Catch::Contains("run 'agent-vm image build'"));
}

TEST_CASE("load_image reads a manifest into absolute paths") {
  Store s;
  make_image(s.root / "default", good_manifest());
  Image img = load_image("default");
  CHECK(img.name == "default");
  CHECK(img.kernel == s.root / "default" / "vmlinuz");
  CHECK(img.initrd == s.root / "default" / "initrd.img");
  CHECK(img.rootfs == s.root / "default" / "rootfs.squashfs");
  CHECK(img.cmdline == "console=ttyS0 root=/dev/vda");
  CHECK(img.opencode_version == "1.2.3");
  CHECK(img.source == "debian");
  CHECK(img.input_digest == "sha256:abc");
  CHECK(img.manifest.at("name").as_string() == "default");
  // A folder works as well as a name.
  CHECK(load_image((s.root / "default").string()).kernel == img.kernel);
}

TEST_CASE("pooled_agent says whether a pooled boot starts the agent, absent in older images") {
  Store s;
  make_image(s.root / "default", good_manifest());
  CHECK_FALSE(load_image("default").pooled_agent);
  auto m = good_manifest();
  m["pooled_agent"] = true;
  make_image(s.root / "new", m);
  CHECK(load_image("new").pooled_agent);
  m["pooled_agent"] = "yes";
  make_image(s.root / "bad", m);
  CHECK_THAT(error_of([] { load_image("bad"); }), Catch::Contains("pooled_agent"));
}

TEST_CASE("a broken manifest names the field or the file") {
  Store s;
  SECTION("missing field") {
    auto m = good_manifest();
    m.erase("cmdline");
    make_image(s.root / "default", m);
    CHECK_THAT(error_of([] { load_image("default"); }), Catch::Contains("no 'cmdline'"));
  }
  SECTION("missing file") {
    make_image(s.root / "default", good_manifest());
    fs::remove(s.root / "default" / "initrd.img");
    std::string e = error_of([] { load_image("default"); });
    CHECK_THAT(e, Catch::Contains("initrd file"));
    CHECK_THAT(e, Catch::Contains("initrd.img"));
  }
  SECTION("a path outside the image folder") {
    auto m = good_manifest();
    m["kernel"] = "../../etc/passwd";
    make_image(s.root / "default", m);
    CHECK_THAT(error_of([] { load_image("default"); }), Catch::Contains("field 'kernel' must name a file inside"));
  }
  SECTION("not JSON") {
    make_image(s.root / "default", good_manifest());
    write_file_atomic(s.root / "default" / "manifest.json", "{not json");
    CHECK_THAT(error_of([] { load_image("default"); }), Catch::Contains("is not JSON"));
  }
  SECTION("a newer schema") {
    auto m = good_manifest();
    m["schema"] = 99;
    make_image(s.root / "default", m);
    CHECK_THAT(error_of([] { load_image("default"); }), Catch::Contains("upgrade agent-vm"));
  }
}

TEST_CASE("list_images reports broken images instead of throwing") {
  Store s;
  make_image(s.root / "default", good_manifest());
  auto bad = good_manifest("bad");
  bad.erase("rootfs");
  make_image(s.root / "bad", bad);
  fs::create_directories(s.root / ".default.staging.abc123");  // a build in progress
  auto list = list_images();
  REQUIRE(list.size() == 2);
  CHECK(list[0].name == "bad");
  CHECK_THAT(list[0].error, Catch::Contains("'rootfs'"));
  CHECK(list[1].name == "default");
  CHECK(list[1].error.empty());
}

TEST_CASE("import copies an image through a symlink and replaces one of the same name whole") {
  Store s;
  TempDir src("image-src");
  make_image(src.path() / "store-path", good_manifest("nixos-built"));
  auto m = good_manifest("nixos-built");
  m["source"] = "nixos";
  write_file_atomic(src.path() / "store-path" / "manifest.json", json::serialize(m));
  fs::create_directory_symlink(src.path() / "store-path", src.path() / "result");  // like nix build

  make_image(s.root / "default", good_manifest());
  write_file_atomic(s.root / "default" / "stale-file", "from the old image");

  Image img = import_image(src.path() / "result", "default");
  CHECK(img.name == "default");
  CHECK(img.source == "nixos");
  CHECK(img.dir == s.root / "default");
  CHECK(fs::is_regular_file(img.kernel));
  CHECK(!fs::is_symlink(img.kernel));
  CHECK(read_file(img.rootfs) == "contents of rootfs.squashfs");
  CHECK(!fs::exists(s.root / "default" / "stale-file"));
  CHECK(img.manifest.at("name").as_string() == "default");
  // Nothing left beside the store's images.
  int entries = 0;
  for (const auto& e : fs::directory_iterator(s.root))
    if (e.path().filename().string().find(".staging") != std::string::npos) ++entries;
  CHECK(entries == 0);

  SECTION("without --name the manifest's name is used") {
    CHECK(import_image(src.path() / "result", "").name == "nixos-built");
  }
  SECTION("a folder without a manifest is refused") {
    TempDir empty("image-empty");
    CHECK_THAT(error_of([&] { import_image(empty.path(), "x"); }), Catch::Contains("no manifest.json"));
  }
  SECTION("remove") {
    remove_image("default");
    CHECK(!fs::exists(s.root / "default"));
    CHECK_THAT(error_of([] { remove_image("default"); }), Catch::Contains("no guest image 'default'"));
  }
}

TEST_CASE("a manifest with a number beyond a double's range is refused, not stored unreadable") {
  // Found by tests/fuzz (image_manifest): {..., "": [7e777]} was accepted,
  // and import_image wrote it back as [Infinity], which load_image then
  // refused as "not JSON": an import that broke the image it stored.
  Store s;
  TempDir src("image-src");
  make_image(src.path(), good_manifest("big"));
  std::string text = json::serialize(good_manifest("big"));
  text.insert(1, "\"packages\": {\"huge\": 7e777}, ");
  write_file_atomic(src.path() / "manifest.json", text);
  CHECK_THAT(error_of([&] { load_image(src.path().string()); }),
             Catch::Contains("beyond the range of a double"));
  CHECK_THAT(error_of([&] { import_image(src.path(), "big"); }),
             Catch::Contains("beyond the range of a double"));
  CHECK(list_images().empty());
  auto parsed = json::parse(text).as_object();
  CHECK_THROWS_AS(parse_manifest(parsed, src.path(), "image 'big'"), Error);
}

TEST_CASE("image names") {
  CHECK(valid_image_name("default"));
  CHECK(valid_image_name("nixos-1.2_x"));
  CHECK(!valid_image_name(""));
  CHECK(!valid_image_name(".hidden"));
  CHECK(!valid_image_name("a/b"));
  CHECK(!valid_image_name("-rf"));
}

TEST_CASE("the input digest covers every input and nothing else") {
  BuildInputs a;
  a.files = {{"common/x x", "one"}, {"debian/build x", "two"}};
  a.includes = {"golang-go", "zsh"};
  a.opencode_version = "1.0.0";
  a.opencode_integrity = "sha512-x";
  a.kernel_package = "linux-image-6.1.0-56-amd64 6.1.192-2";
  std::string d = input_digest(a);
  CHECK(d.rfind("sha256:", 0) == 0);
  CHECK(d.size() == 7 + 64);

  BuildInputs b = a;
  b.includes = {"zsh", "golang-go", "zsh"};
  CHECK(input_digest(b) == d);  // order and repeats do not matter

  b = a;
  b.files[1].second = "two!";
  CHECK(input_digest(b) != d);
  b = a;
  b.opencode_version = "1.0.1";
  CHECK(input_digest(b) != d);
  b = a;
  b.kernel_package = "linux-image-6.1.0-57-amd64 6.1.193-1";
  CHECK(input_digest(b) != d);
  b = a;
  b.includes.push_back("vim");
  CHECK(input_digest(b) != d);
}

TEST_CASE("the opencode pin") {
  auto pin = parse_opencode_pin("# comment\nversion=1.2.3\nintegrity=sha512-abc==\n");
  CHECK(pin.version == "1.2.3");
  CHECK(pin.integrity == "sha512-abc==");
  CHECK_THROWS_AS(parse_opencode_pin("version=1.2.3\n"), Error);
  // The pin shipped in guest/ parses.
  auto shipped = parse_opencode_pin(read_file(fs::path(AGENT_VM_SOURCE_DIR) / "guest/common/opencode.pin"));
  CHECK(!shipped.version.empty());
}

TEST_CASE("manifest_from_build turns the build script's files into the manifest") {
  TempDir d("image-build");
  write_file_atomic(d.path() / "build-info",
                    "kernel=vmlinuz\ninitrd=initrd.img\nrootfs=rootfs.squashfs\n"
                    "rootfs_format=squashfs\nkernel_version=6.1.0-56-amd64\n"
                    "kernel_package=linux-image-6.1.0-56-amd64 6.1.192-2\nsuite=bookworm\n"
                    "opencode_version=1.2.3\nopencode_integrity=sha512-x\n"
                    "cmdline=console=ttyS0 root=/dev/vda ro\n");
  write_file_atomic(d.path() / "packages.tsv", "openssh-server\t1:9.2p1-2\ntmux\t3.3a-3\n");
  BuildInputs in;
  in.includes = {"zsh"};
  auto m = manifest_from_build(d.path(), "default", in, "sha256:f00", "2025-01-01T00:00:00Z");
  CHECK(m.at("cmdline").as_string() == "console=ttyS0 root=/dev/vda ro");
  CHECK(m.at("source").as_string() == "debian");
  CHECK(m.at("packages").as_object().at("tmux").as_string() == "3.3a-3");
  CHECK(m.at("includes").as_array().size() == 1);
  CHECK(m.at("input_digest").as_string() == "sha256:f00");
  CHECK(m.at("kernel_package").as_string() == "linux-image-6.1.0-56-amd64 6.1.192-2");

  write_file_atomic(d.path() / "build-info", "kernel=vmlinuz\n");
  CHECK_THAT(error_of([&] { manifest_from_build(d.path(), "default", in, "", ""); }),
             Catch::Contains("no 'initrd'"));
}

TEST_CASE("an image names its architecture, and one without the field is amd64") {
  Store s;
  make_image(s.root / "default", good_manifest());
  CHECK(load_image("default").arch == GuestArch::X86_64);
  auto m = good_manifest("default-arm64");
  m["arch"] = "arm64";
  make_image(s.root / "default-arm64", m);
  CHECK(load_image("default-arm64").arch == GuestArch::Aarch64);
  m["arch"] = "riscv64";
  make_image(s.root / "odd", m);
  CHECK_THAT(error_of([] { load_image("odd"); }), Catch::Contains("field 'arch' is 'riscv64'"));
}

TEST_CASE("an arm64 build has its own pin, digest, manifest field and default name") {
  std::string pin_text = "version=1.2.3\nintegrity=sha512-x64==\narm64_version=1.2.0\narm64_integrity=sha512-arm==\n";
  auto x = parse_opencode_pin(pin_text, GuestArch::X86_64);
  auto a = parse_opencode_pin(pin_text, GuestArch::Aarch64);
  CHECK(x.version == "1.2.3");
  CHECK(x.integrity == "sha512-x64==");
  CHECK(a.version == "1.2.0");
  CHECK(a.integrity == "sha512-arm==");
  CHECK_THAT(error_of([] { parse_opencode_pin("version=1.2.3\nintegrity=sha512-x==\n", GuestArch::Aarch64); }),
             Catch::Contains("arm64_version="));
  auto shipped = parse_opencode_pin(read_file(fs::path(AGENT_VM_SOURCE_DIR) / "guest/common/opencode.pin"),
                                    GuestArch::Aarch64);
  CHECK(shipped.integrity.rfind("sha512-", 0) == 0);

  BuildInputs in;
  in.files = {{"common/x x", "one"}};
  in.kernel_package = "linux-image-6.1.0-57-arm64 6.1.192-3";
  std::string amd = input_digest(in);
  in.arch = GuestArch::Aarch64;
  CHECK(input_digest(in) != amd);

  CHECK(default_image_name(GuestArch::X86_64, GuestArch::X86_64) == "default");
  CHECK(default_image_name(GuestArch::Aarch64, GuestArch::X86_64) == "default-arm64");
  CHECK(default_image_name(GuestArch::Aarch64, GuestArch::Aarch64) == "default");
  CHECK(default_image_name(GuestArch::X86_64, std::nullopt) == "default-amd64");

  TempDir d("image-build");
  write_file_atomic(d.path() / "build-info",
                    "kernel=vmlinuz\ninitrd=initrd.img\nrootfs=rootfs.squashfs\n"
                    "rootfs_format=squashfs\nkernel_version=6.1.0-57-arm64\narch=arm64\n"
                    "kernel_package=linux-image-6.1.0-57-arm64 6.1.192-3\nsuite=bookworm\n"
                    "opencode_version=1.2.0\nopencode_integrity=sha512-arm==\n"
                    "cmdline=console=ttyAMA0 root=/dev/vda ro\n");
  auto m = manifest_from_build(d.path(), "default-arm64", in, "sha256:f00", "2025-01-01T00:00:00Z");
  CHECK(m.at("arch").as_string() == "arm64");
  BuildInputs x86;
  CHECK(manifest_from_build(d.path(), "default", x86, "sha256:f00", "").at("arch").as_string() == "amd64");
}

TEST_CASE("a lean build has its own digest and says so in its manifest") {
  BuildInputs in;
  in.files = {{"common/x x", "one"}, {"debian/packages-tools -", "python3"}};
  in.kernel_package = "linux-image-6.1.0-57-arm64 6.1.192-3";
  in.arch = GuestArch::Aarch64;
  std::string full = input_digest(in);
  in.lean = true;
  std::string lean = input_digest(in);
  CHECK(lean != full);
  in.lean = false;
  CHECK(input_digest(in) == full);  // a full image's digest is unchanged by the field

  TempDir d("image-build");
  write_file_atomic(d.path() / "build-info",
                    "kernel=vmlinuz\ninitrd=initrd.img\nrootfs=rootfs.squashfs\n"
                    "rootfs_format=squashfs\nkernel_version=6.1.0-57-arm64\narch=arm64\nprofile=lean\n"
                    "kernel_package=linux-image-6.1.0-57-arm64 6.1.192-3\nsuite=bookworm\n"
                    "opencode_version=1.2.0\nopencode_integrity=sha512-arm==\n"
                    "cmdline=console=ttyAMA0 root=/dev/vda ro\n");
  in.lean = true;
  auto m = manifest_from_build(d.path(), "default-arm64", in, lean, "2025-01-01T00:00:00Z");
  CHECK(m.at("profile").as_string() == "lean");
  in.lean = false;
  CHECK(manifest_from_build(d.path(), "default-arm64", in, full, "").at("profile").as_string() == "full");

  // Read back: a Debian image without the field (built before lean ones) is
  // full; an imported NixOS image has none.
  Store s;
  auto lm = good_manifest("default-arm64");
  lm["profile"] = "lean";
  make_image(s.root / "default-arm64", lm);
  CHECK(load_image("default-arm64").profile == "lean");
  make_image(s.root / "default", good_manifest());
  CHECK(load_image("default").profile == "full");
  auto nm = good_manifest("nixos");
  nm["source"] = "nixos";
  make_image(s.root / "nixos", nm);
  CHECK(load_image("nixos").profile.empty());
}
