// Guest images: a folder with manifest.json naming a kernel, an initrd, a
// read-only root filesystem and the kernel command line (docs/design.md, "Guest
// contract"). The store lives in images_root() (~/.agent-vm/images), one
// folder per image; `agent-vm image build` makes the default one from Debian
// packages (guest/debian/build), `image import` takes any folder with a
// manifest (how the NixOS flake's result comes in).
#pragma once

#include <boost/json/object.hpp>
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "launcher/vm_spec.h"

namespace avm {
class Progress;
}

namespace avm::launcher {

// The manifest schema this build writes and reads.
inline constexpr int kManifestSchema = 1;

struct Image {
  std::string name;                                // "default"
  std::filesystem::path dir;                       // ~/.agent-vm/images/default
  std::filesystem::path kernel, initrd, rootfs;    // absolute
  std::string cmdline;                             // base kernel command line
  std::string opencode_version, source /* debian|nixos */, built, input_digest;
  GuestArch arch = GuestArch::X86_64;              // manifest "arch" (absent: amd64)
  // manifest "profile": "full" (the toolset) or "lean" (the guest contract
  // only); a Debian image without the field is full, any other has "".
  std::string profile;
  // manifest "pooled_agent": a warm-pool boot of this image starts sshd and
  // the agent, which waits for its claim (agent-run). Images from before
  // start both only at the claim, and a pooled boot of one is ready at its
  // guest agent.
  bool pooled_agent = false;
  boost::json::object manifest;                    // the whole manifest
  // Set by list_images() only: why this image cannot be used (empty: fine).
  std::string error;
};

// util/paths.h images_dir().
std::filesystem::path images_root();

// A name ("default") from the store, or a folder holding a manifest.json.
// Throws avm::Error naming the fix when it is missing ("run 'agent-vm image
// build'") or broken (which field, which file).
Image load_image(const std::string& name_or_dir);

// Checks a manifest against the folder it sits in; throws avm::Error naming
// the field or file that is wrong. `what` names the image in messages.
Image parse_manifest(const boost::json::object& manifest, const std::filesystem::path& dir,
                     const std::string& what);

// Every image in the store, by name; broken ones carry `error`, never throw.
std::vector<Image> list_images();

// Copies the image in `dir` (a manifest and the files it names; symlinks such
// as Nix's `result` are followed) into the store as `name` (empty: the
// manifest's name, else "imported"), replacing an image of that name whole.
Image import_image(const std::filesystem::path& dir, const std::string& name);

// Removes an image from the store. Throws when there is none of that name.
void remove_image(const std::string& name);

// A valid image name: [A-Za-z0-9][A-Za-z0-9._-]*, at most 64 characters.
bool valid_image_name(const std::string& name);

// --- building the default image --------------------------------------------

struct BuildOptions {
  std::string name = "default";
  GuestArch arch = GuestArch::X86_64;  // the guest's architecture (--arch)
  std::vector<std::string> includes;   // extra Debian packages
  bool lean = false;                   // the guest contract's packages only (--lean)
  std::string opencode_version;        // empty: the version pinned in guest/
  bool force = false;                  // rebuild even when the inputs match
  std::chrono::minutes deadline{30};   // the build is killed after this (another
                                       // architecture's: at least 120 minutes)
};

// What decides whether an image is up to date: everything that goes into it.
struct BuildInputs {
  std::vector<std::pair<std::string, std::string>> files;  // relative path, content
  std::vector<std::string> includes;
  std::string opencode_version, opencode_integrity;
  std::string kernel_package;  // "linux-image-6.1.0-56-amd64 6.1.192-2"
  GuestArch arch = GuestArch::X86_64;
  bool lean = false;
};
// "sha256:<hex>" over the inputs, independent of the order of includes.
std::string input_digest(const BuildInputs& inputs);

// The opencode version and integrity pinned in guest/common/opencode.pin for
// an architecture: `version=`/`integrity=` for x86_64 (opencode-linux-x64),
// `arm64_version=`/`arm64_integrity=` for aarch64 (opencode-linux-arm64).
struct OpencodePin {
  std::string version, integrity;
};
OpencodePin parse_opencode_pin(const std::string& text, GuestArch arch = GuestArch::X86_64);

// The name `image build --arch A` gives when --name is not passed: "default"
// for the host's architecture, "default-arm64" (the Debian name) otherwise,
// so another architecture's image never replaces the one sessions boot.
std::string default_image_name(GuestArch arch, std::optional<GuestArch> host);

struct BuildResult {
  Image image;
  bool built = false;   // false: the cached image was up to date
  std::chrono::milliseconds took{0};
};

// Builds the image unless one with the same input digest exists (or `force`).
// Stages are reported on `progress`. The result appears whole or not at all:
// it is built in a hidden sibling folder and renamed into place.
BuildResult build_image(const BuildOptions& options, Progress& progress);

// The manifest for a build folder holding build-info and packages.tsv (as
// guest/debian/build writes them). Exposed for tests.
boost::json::object manifest_from_build(const std::filesystem::path& build_dir,
                                        const std::string& name, const BuildInputs& inputs,
                                        const std::string& digest, const std::string& built);

}  // namespace avm::launcher
