// agent-vm image: build, list, import and remove guest images.
#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <cstdio>
#include <iostream>

#include "commands/command.h"
#include "launcher/image.h"
#include "util/error.h"
#include "util/progress.h"
#include "util/strings.h"

namespace avm::cmd {

namespace {

namespace json = boost::json;
namespace fs = std::filesystem;

json::object summary_json(const launcher::Image& img) {
  json::object o;
  o["name"] = img.name;
  o["dir"] = img.dir.string();
  if (!img.error.empty()) {
    o["error"] = img.error;
    return o;
  }
  o["source"] = img.source;
  o["arch"] = launcher::debian_arch(img.arch);
  o["profile"] = img.profile;
  o["kernel"] = img.kernel.string();
  o["initrd"] = img.initrd.string();
  o["rootfs"] = img.rootfs.string();
  o["cmdline"] = img.cmdline;
  o["opencode_version"] = img.opencode_version;
  o["built"] = img.built;
  o["input_digest"] = img.input_digest;
  return o;
}

std::string size_of(const fs::path& p) {
  std::error_code ec;
  auto n = fs::file_size(p, ec);
  if (ec) return "?";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0fM", static_cast<double>(n) / (1024.0 * 1024.0));
  return buf;
}

class ImageCommand final : public Command {
 public:
  std::string name() const override { return "image"; }
  std::string summary() const override { return "Build, list and import guest images"; }

  void configure(CLI::App& app) override {
    // The description stays the one-line summary (the top-level --help lists
    // it); the longer text opens the footer.
    app.footer(
        "DESCRIPTION\n"
        "Guest images are folders under ~/.agent-vm/images ($AGENT_VM_IMAGES), each with a\n"
        "manifest.json naming a kernel, an initrd, a read-only root filesystem and the\n"
        "kernel command line. Sessions boot the image named 'default'.\n"
        "\n"
        "'image build' makes the default image on any Debian or Ubuntu host, without Nix:\n"
        "Debian's kernel from the host's apt sources, a small initramfs, and a squashfs\n"
        "root made with mmdebstrap holding sshd, tmux, git, qemu-guest-agent, a build\n"
        "toolset and opencode (npm package opencode-linux-x64 at the pinned version,\n"
        "checked against the registry's sha512). It rebuilds only when its inputs change\n"
        "(guest scripts, packages, opencode version, the kernel package in apt), so a\n"
        "second run takes seconds. Downloads are cached in ~/.agent-vm/cache/guest.\n"
        "\n"
        "'image build --arch arm64' makes an aarch64 image (Debian's arm64 kernel and\n"
        "packages, opencode-linux-arm64), named 'default-arm64' unless --name says\n"
        "otherwise; on an x86_64 host its packages are set up through qemu-user-static\n"
        "(binfmt_misc), and its sessions (agent-spawn --image default-arm64) run under\n"
        "TCG in qemu-system-aarch64.\n"
        "\n"
        "'image build --lean' leaves the toolset out (build-essential, python3, nodejs,\n"
        "ripgrep and the other packages of guest/debian/packages-tools): the root holds\n"
        "what the guest contract needs (systemd, sshd, tmux, qemu-guest-agent, git,\n"
        "curl, jq) and opencode. Enough for tests and stand-in agents, and far quicker\n"
        "to build for another architecture; 'image list' shows which an image is.\n"
        "\n"
        "'image import DIR' takes a folder with a manifest, such as the result of\n"
        "'nix build ./guest/nixos', and copies it into the store.\n"
        "\n"
        "EXAMPLES\n"
        "  agent-vm image build                        build (or confirm) the default image\n"
        "  agent-vm image build --include golang-go    add Debian packages to the image\n"
        "  agent-vm image build --arch arm64           an aarch64 image, 'default-arm64'\n"
        "  agent-vm image build --arch arm64 --lean    the same without the toolset, in minutes\n"
        "  agent-vm image build --opencode-version 1.19.0 --force\n"
        "  agent-vm image list --json\n"
        "  nix build ./guest/nixos && agent-vm image import result --name default\n"
        "  agent-vm image rm old\n"
        "\n"
        "FILES\n"
        "  ~/.agent-vm/images/NAME/manifest.json       one image\n"
        "  ~/.agent-vm/cache/guest/build-NAME.log      the last build's full output");
    app.require_subcommand(1, 1);

    auto* b = app.add_subcommand("build", "Build the default guest image from Debian packages");
    b->add_option("--name", build_name_,
                  "image name (default: 'default'; 'default-arm64' for --arch arm64 on an x86_64 host)")
        ->type_name("NAME");
    b->add_option("--arch", build_arch_,
                  "the guest's architecture: amd64 (x86_64) or arm64 (aarch64) (default: the host's)")
        ->type_name("ARCH");
    b->add_option("--include", build_.includes,
                  "an extra Debian package in the image (repeatable)")
        ->type_name("PKG")
        ->take_all()
        ->expected(1);
    b->add_flag("--lean", build_.lean,
                "only the guest contract's packages and opencode: no compilers, python3, "
                "nodejs or the other tools of guest/debian/packages-tools");
    b->add_option("--opencode-version", build_.opencode_version,
                  "opencode-linux-x64 (or -arm64) version from the npm registry (default: the "
                  "version pinned in guest/common/opencode.pin)")
        ->type_name("VERSION");
    b->add_flag("--force", build_.force, "rebuild even when the inputs have not changed");
    b->add_flag("--json", json_, "print the image's manifest summary as JSON");
    b->add_flag("--quiet,-q", quiet_, "no progress, only errors");
    b->footer(
        "Stages: kernel, initramfs, opencode, root filesystem, manifest. The image is\n"
        "built in a hidden folder beside the store and renamed into place, so an\n"
        "interrupted build never leaves half an image behind.");
    build_cmd_ = b;

    auto* l = app.add_subcommand("list", "List guest images");
    l->add_flag("--json", json_, "print a JSON array");
    list_cmd_ = l;

    auto* i = app.add_subcommand("import", "Copy an image folder (with manifest.json) into the store");
    i->add_option("DIR", import_dir_, "folder holding manifest.json and the files it names")
        ->required()
        ->type_name("DIR");
    i->add_option("--name", import_name_, "image name (default: the manifest's name)")
        ->type_name("NAME");
    i->add_flag("--json", json_, "print the imported image as JSON");
    import_cmd_ = i;

    auto* r = app.add_subcommand("rm", "Remove a guest image");
    r->add_option("NAME", rm_name_, "image name")->required()->type_name("NAME");
    rm_cmd_ = r;
  }

  int run() override {
    if (build_cmd_->parsed()) return run_build();
    if (list_cmd_->parsed()) return run_list();
    if (import_cmd_->parsed()) return run_import();
    if (rm_cmd_->parsed()) {
      launcher::remove_image(rm_name_);
      std::cout << "removed image '" << rm_name_ << "'\n";
      return 0;
    }
    return 2;
  }

 private:
  int run_build() {
    std::optional<launcher::GuestArch> host = launcher::host_arch();
    if (build_arch_) {
      auto a = launcher::parse_guest_arch(*build_arch_);
      if (!a)
        throw Error("--arch " + *build_arch_ + " is not an architecture images are built for",
                    "use --arch amd64 (x86_64) or --arch arm64 (aarch64)");
      build_.arch = *a;
    } else if (host) {
      build_.arch = *host;
    }
    build_.name = build_name_.value_or(launcher::default_image_name(build_.arch, host));
    Progress progress(quiet_);
    auto r = launcher::build_image(build_, progress);
    if (json_) {
      json::object o = summary_json(r.image);
      o["rebuilt"] = r.built;
      std::cout << json::serialize(o) << "\n";
    } else if (r.built) {
      std::cout << "built image '" << r.image.name << "' in "
                << human_duration_ms(r.took) << ": " << r.image.dir.string() << "\n";
    } else {
      std::cout << "image '" << r.image.name << "' is up to date: " << r.image.dir.string()
                << " (use --force to rebuild)\n";
    }
    return 0;
  }

  int run_list() {
    auto images = launcher::list_images();
    if (json_) {
      json::array a;
      for (const auto& img : images) a.push_back(summary_json(img));
      std::cout << json::serialize(a) << "\n";
      return 0;
    }
    if (images.empty()) {
      std::cout << "no guest images in " << launcher::images_root().string()
                << "; run 'agent-vm image build'\n";
      return 0;
    }
    std::printf("%-16s %-8s %-6s %-8s %-10s %-8s %-21s %s\n", "NAME", "SOURCE", "ARCH",
                "PROFILE", "OPENCODE", "ROOTFS", "BUILT", "DIGEST");
    for (const auto& img : images) {
      if (!img.error.empty()) {
        std::printf("%-16s BROKEN: %s\n", img.name.c_str(), img.error.c_str());
        continue;
      }
      std::string digest = img.input_digest.substr(0, std::min<std::size_t>(19, img.input_digest.size()));
      std::printf("%-16s %-8s %-6s %-8s %-10s %-8s %-21s %s\n", img.name.c_str(),
                  img.source.c_str(), launcher::debian_arch(img.arch),
                  img.profile.empty() ? "-" : img.profile.c_str(), img.opencode_version.c_str(),
                  size_of(img.rootfs).c_str(), img.built.c_str(), digest.c_str());
    }
    return 0;
  }

  int run_import() {
    auto img = launcher::import_image(import_dir_, import_name_);
    if (json_)
      std::cout << json::serialize(summary_json(img)) << "\n";
    else
      std::cout << "imported image '" << img.name << "' (" << img.source << ", opencode "
                << img.opencode_version << "): " << img.dir.string() << "\n";
    return 0;
  }

  launcher::BuildOptions build_;
  std::optional<std::string> build_name_, build_arch_;
  bool json_ = false, quiet_ = false;
  std::string import_dir_, import_name_, rm_name_;
  CLI::App *build_cmd_ = nullptr, *list_cmd_ = nullptr, *import_cmd_ = nullptr,
           *rm_cmd_ = nullptr;
};

}  // namespace

std::unique_ptr<Command> make_image() { return std::make_unique<ImageCommand>(); }

}  // namespace avm::cmd
