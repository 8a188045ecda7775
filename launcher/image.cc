#include "launcher/image.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <map>
#include <sstream>

#include "json/fields.h"
#include "json/text.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/file.h"
#include "util/flock.h"
#include "util/paths.h"
#include "util/process.h"
#include "util/progress.h"
#include "util/strings.h"
#include "util/temp_dir.h"
#include "util/timestamp.h"

namespace avm::launcher {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono;

namespace {

constexpr const char* kBuildHint = "run 'agent-vm image build'";

constexpr const char* kRebuildHint = "rebuild it with 'agent-vm image build --force' (or import it again)";

// The manifest's one translation of a field error into an avm::Error.
[[noreturn]] void raise_manifest_error(const std::string& what, const avm::json::FieldError& e) {
  if (e.problem() == avm::json::FieldError::Problem::Missing)
    throw Error(what + ": manifest.json has no '" + e.path() + "'", kRebuildHint);
  throw Error(what + ": manifest.json field '" + e.path() + "' is not " +
                  (e.expected().empty() ? std::string("valid") : e.expected()),
              kRebuildHint);
}

// A file the manifest names: a plain name inside the image folder.
fs::path member(const avm::json::Fields& m, const char* key, const fs::path& dir,
                const std::string& what) {
  std::string rel = m.str(key);
  fs::path p(rel);
  if (rel.empty() || p.is_absolute() || rel.find("..") != std::string::npos)
    throw Error(what + ": manifest.json field '" + key + "' must name a file inside " +
                    dir.string() + ", not '" + rel + "'",
                "fix the manifest (plain file names only) and import it again");
  fs::path full = dir / p;
  std::error_code ec;
  if (!fs::is_regular_file(full, ec))
    throw Error(what + ": the " + key + " file " + full.string() + " named by manifest.json is missing",
                kRebuildHint);
  return full;
}

std::map<std::string, std::string> read_kv(const fs::path& p) {
  std::map<std::string, std::string> kv;
  for (auto& [k, v] : parse_key_values(read_file(p), true)) kv[k] = std::move(v);
  return kv;
}

fs::path guest_dir() { return data_dir() / "guest"; }

// Every file of the shared and Debian guest sources, sorted, for the digest.
std::vector<std::pair<std::string, std::string>> guest_source_files() {
  fs::path root = guest_dir();
  std::vector<std::pair<std::string, std::string>> files;
  for (const char* sub : {"common", "debian"}) {
    fs::path d = root / sub;
    std::error_code ec;
    if (!fs::is_directory(d, ec))
      throw Error("the guest build files are missing (" + d.string() + ")",
                  "reinstall agent-vm (scripts/setup), or set AGENT_VM_DATADIR to the folder "
                  "holding guest/");
    for (auto it = fs::recursive_directory_iterator(d); it != fs::recursive_directory_iterator();
         ++it) {
      if (!it->is_regular_file()) continue;
      std::string rel = fs::relative(it->path(), root).string();
      struct stat st {};
      ::stat(it->path().c_str(), &st);
      // The mode matters too (an executable bit changes what the image does).
      files.emplace_back(rel + ((st.st_mode & 0111) ? " x" : " -"), read_file(it->path()));
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

// "linux-image-6.1.0-56-amd64 6.1.192-2" from the host's apt, or "" when apt
// cannot say (the build then fails with its own message).
std::string kernel_package(GuestArch arch) {
  RunOptions o;
  o.timeout = seconds(30);
  std::string a = debian_arch(arch);
  auto deps = run({"apt-cache", "depends", "linux-image-" + a + ":" + a}, o);
  std::string pkg;
  for (const auto& line : split(deps.out, '\n')) {
    auto t = trim(line);
    if (t.starts_with("Depends: linux-image-")) {
      pkg = t.substr(std::string("Depends: ").size());
      if (pkg.ends_with(":" + a)) pkg.resize(pkg.size() - a.size() - 1);
      break;
    }
  }
  if (pkg.empty()) return {};
  auto pol = run({"apt-cache", "policy", pkg + ":" + a}, o);
  for (const auto& line : split(pol.out, '\n')) {
    auto t = trim(line);
    if (t.starts_with("Candidate:")) return pkg + " " + trim(t.substr(10));
  }
  return pkg;
}

void fsync_dir(const fs::path& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd) ::fsync(fd.get());
}

// Puts `staged` (a complete image folder) at `dest`, replacing what is there
// in one step; the old image ends up at `staged` for its owner to delete.
// Returns false when there was nothing to replace (staged is gone then).
bool swap_into_place(const fs::path& staged, const fs::path& dest) {
  if (::renameat2(AT_FDCWD, staged.c_str(), AT_FDCWD, dest.c_str(), RENAME_EXCHANGE) == 0) {
    fsync_dir(dest.parent_path());
    return true;
  }
  if (errno != ENOENT) throw_errno("cannot put the new image at " + dest.string());
  if (::rename(staged.c_str(), dest.c_str()) != 0)
    throw_errno("cannot put the new image at " + dest.string());
  fsync_dir(dest.parent_path());
  return false;
}

FileLock lock_image(const std::string& name) {
  fs::path root = images_root();
  make_private_dir(root, 0755);
  try {
    return FileLock::acquire(root / ("." + name + ".lock"), minutes(1));
  } catch (const Error& e) {
    throw Error("image '" + name + "' is busy: another 'agent-vm image' command holds " +
                    (root / ("." + name + ".lock")).string(),
                "wait for it to finish, then try again");
  }
}

// Hidden build or import folders left by a killed run (we hold the lock).
void remove_stale_staging(const std::string& name) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(images_root(), ec)) {
    std::string f = e.path().filename().string();
    if (f.starts_with("." + name + ".staging")) fs::remove_all(e.path(), ec);
  }
}

}  // namespace

fs::path images_root() { return images_dir(); }

bool valid_image_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  if (!std::isalnum(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

Image parse_manifest(const json::object& m, const fs::path& dir, const std::string& what) {
  Image img;
  img.dir = fs::absolute(dir).lexically_normal();
  // Boost.JSON reads 1e400 as infinity and writes it as `Infinity`: an
  // import would store a manifest that no longer parses.
  if (!avm::json::finite_numbers(m))
    throw Error(what + ": manifest.json holds a number beyond the range of a double",
                "fix the manifest, or rebuild the image with 'agent-vm image build --force'");
  if (auto it = m.find("schema"); it != m.end()) {
    if (!it->value().is_int64() || it->value().as_int64() > kManifestSchema)
      throw Error(what + ": manifest.json has schema " + json::serialize(it->value()) +
                      ", this agent-vm reads schema " + std::to_string(kManifestSchema),
                  "upgrade agent-vm, or rebuild the image with this one");
  }
  try {
    // A null field is the same as an absent one.
    avm::json::Fields f(m, "", {avm::json::Null::Absent});
    img.kernel = member(f, "kernel", img.dir, what);
    img.initrd = member(f, "initrd", img.dir, what);
    img.rootfs = member(f, "rootfs", img.dir, what);
    img.cmdline = f.str("cmdline");
    img.source = f.str("source");
    img.opencode_version = f.str("opencode_version");
    img.built = f.opt_str("built").value_or("");
    img.input_digest = f.opt_str("input_digest").value_or("");
    img.name = f.opt_str("name").value_or("");
    std::string arch = f.opt_str("arch").value_or("amd64");
    auto parsed = parse_guest_arch(arch);
    if (!parsed)
      throw Error(what + ": manifest.json field 'arch' is '" + arch + "', not amd64 or arm64",
                  kRebuildHint);
    img.arch = *parsed;
    img.profile = f.opt_str("profile").value_or(img.source == "debian" ? "full" : "");
    img.pooled_agent = f.opt_bool("pooled_agent").value_or(false);
  } catch (const avm::json::FieldError& e) {
    raise_manifest_error(what, e);
  }
  img.manifest = m;
  return img;
}

Image load_image(const std::string& name_or_dir) {
  fs::path dir;
  std::string what;
  bool by_name = valid_image_name(name_or_dir) && name_or_dir.find('/') == std::string::npos &&
                 !fs::exists(fs::path(name_or_dir) / "manifest.json");
  if (by_name) {
    dir = images_root() / name_or_dir;
    what = "image '" + name_or_dir + "'";
  } else {
    dir = name_or_dir;
    what = "image at " + name_or_dir;
  }
  fs::path mf = dir / "manifest.json";
  auto text = read_file_if_exists(mf);
  if (!text) {
    if (by_name && name_or_dir == "default")
      throw Error("no guest image 'default' (" + mf.string() + " is missing)", kBuildHint);
    if (by_name)
      throw Error("no guest image '" + name_or_dir + "' (" + mf.string() + " is missing)",
                  "see 'agent-vm image list'; build one with 'agent-vm image build --name " +
                      name_or_dir + "' or import one with 'agent-vm image import DIR'");
    throw Error("no manifest.json in " + dir.string(),
                "an image folder holds manifest.json, kernel, initrd and rootfs; " +
                    std::string(kBuildHint));
  }
  json::value v;
  try {
    v = json::parse(*text);
  } catch (const std::exception& e) {
    throw Error(what + ": " + mf.string() + " is not JSON (" + e.what() + ")",
                "rebuild it with 'agent-vm image build --force' (or import it again)");
  }
  if (!v.is_object())
    throw Error(what + ": " + mf.string() + " is not a JSON object",
                "rebuild it with 'agent-vm image build --force' (or import it again)");
  Image img = parse_manifest(v.as_object(), dir, what);
  if (by_name) img.name = name_or_dir;
  if (img.name.empty()) img.name = img.dir.filename().string();
  return img;
}

std::vector<Image> list_images() {
  std::vector<Image> out;
  std::error_code ec;
  fs::path root = images_root();
  if (!fs::is_directory(root, ec)) return out;
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    std::string n = e.path().filename().string();
    if (n.empty() || n[0] == '.' || !e.is_directory()) continue;
    names.push_back(n);
  }
  std::sort(names.begin(), names.end());
  for (const auto& n : names) {
    try {
      out.push_back(load_image(n));
    } catch (const Error& e) {
      Image bad;
      bad.name = n;
      bad.dir = root / n;
      bad.error = e.what();
      out.push_back(std::move(bad));
    }
  }
  return out;
}

Image import_image(const fs::path& src_in, const std::string& name_in) {
  fs::path src = fs::absolute(src_in);
  Image from = load_image(src.string());  // checks the manifest and its files
  std::string name = name_in;
  if (name.empty()) name = valid_image_name(from.name) ? from.name : "imported";
  if (!valid_image_name(name))
    throw Error("'" + name + "' is not a valid image name",
                "use letters, digits, '.', '_' and '-' (pass --name)");
  FileLock lock = lock_image(name);
  remove_stale_staging(name);
  TempDir staging("." + name + ".staging", images_root());
  json::object m = from.manifest;
  for (const char* key : {"kernel", "initrd", "rootfs"}) {
    fs::path file = from.dir / std::string(m.at(key).as_string());
    std::error_code ec;
    fs::copy_file(file, staging.path() / file.filename(), fs::copy_options::overwrite_existing,
                  ec);
    if (ec)
      throw Error("cannot copy " + file.string() + " into the image store: " + ec.message(),
                  "check the free space in " + images_root().string());
    fs::permissions(staging.path() / file.filename(), fs::perms(0644), ec);
    m[key] = file.filename().string();
  }
  m["name"] = name;
  if (!m.contains("imported_from")) m["imported_from"] = src.string();
  m["imported"] = utc_now_iso8601();
  write_file_atomic(staging.path() / "manifest.json", json::serialize(m) + "\n", 0644);
  ::chmod(staging.path().c_str(), 0755);
  if (!swap_into_place(staging.path(), images_root() / name)) staging.release();
  return load_image(name);
}

void remove_image(const std::string& name) {
  if (!valid_image_name(name)) throw Error("'" + name + "' is not a valid image name");
  fs::path dir = images_root() / name;
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw Error("no guest image '" + name + "' in " + images_root().string(),
                "see 'agent-vm image list'");
  FileLock lock = lock_image(name);
  // Rename first so a reader never sees half an image, then delete.
  TempDir gone("." + name + ".staging", images_root());
  swap_into_place(dir, gone.path());  // `gone` (now the image) is removed with its owner
  fs::remove(dir, ec);                // the empty folder swapped in
}

std::string input_digest(const BuildInputs& in) {
  std::vector<std::string> inc = in.includes;
  std::sort(inc.begin(), inc.end());
  inc.erase(std::unique(inc.begin(), inc.end()), inc.end());
  std::ostringstream s;
  s << "agent-vm guest image inputs, manifest schema " << kManifestSchema << "\n";
  for (const auto& [path, content] : in.files)
    s << "file " << path << " " << content.size() << "\n" << content << "\n";
  for (const auto& p : inc) s << "include " << p << "\n";
  s << "opencode " << in.opencode_version << " " << in.opencode_integrity << "\n";
  s << "kernel " << in.kernel_package << "\n";
  // An amd64 image's digest is the one it had before images named their
  // architecture: such images stay up to date.
  if (in.arch != GuestArch::X86_64) s << "arch " << debian_arch(in.arch) << "\n";
  // Likewise a full image's digest is the one it had before lean images.
  if (in.lean) s << "profile lean\n";
  RunOptions o;
  o.input = s.str();
  o.timeout = seconds(30);
  RunResult r = run({"sha256sum"}, o);
  if (r.exit_code != 0 || r.out.size() < 64)
    throw Error("sha256sum failed while computing the image's input digest", "install coreutils");
  return "sha256:" + r.out.substr(0, 64);
}

OpencodePin parse_opencode_pin(const std::string& text, GuestArch arch) {
  std::string prefix = arch == GuestArch::X86_64 ? "" : std::string(debian_arch(arch)) + "_";
  OpencodePin pin;
  for (const auto& [k, v] : parse_key_values(text, true)) {
    if (k == prefix + "version") pin.version = v;
    if (k == prefix + "integrity") pin.integrity = v;
  }
  if (pin.version.empty() || !pin.integrity.starts_with("sha512-"))
    throw Error("guest/common/opencode.pin needs '" + prefix + "version=' and '" + prefix +
                    "integrity=sha512-...' lines",
                "restore the file from the agent-vm sources");
  return pin;
}

std::string default_image_name(GuestArch arch, std::optional<GuestArch> host) {
  if (host && *host == arch) return "default";
  return std::string("default-") + debian_arch(arch);
}

json::object manifest_from_build(const fs::path& build_dir, const std::string& name,
                                 const BuildInputs& inputs, const std::string& digest,
                                 const std::string& built) {
  auto info = read_kv(build_dir / "build-info");
  auto need = [&](const char* k) {
    auto it = info.find(k);
    if (it == info.end() || it->second.empty())
      throw Error("the image build wrote no '" + std::string(k) + "' in " +
                      (build_dir / "build-info").string(),
                  "this is a bug in guest/debian/build; rerun with --force");
    return it->second;
  };
  json::object m;
  m["schema"] = kManifestSchema;
  m["name"] = name;
  m["source"] = "debian";
  m["kernel"] = need("kernel");
  m["initrd"] = need("initrd");
  m["rootfs"] = need("rootfs");
  m["rootfs_format"] = need("rootfs_format");
  m["cmdline"] = need("cmdline");
  m["arch"] = debian_arch(inputs.arch);
  m["profile"] = inputs.lean ? "lean" : "full";
  m["pooled_agent"] = true;  // the guest files of this agent-vm (guest/common)
  m["kernel_version"] = need("kernel_version");
  m["kernel_package"] = need("kernel_package");
  m["suite"] = need("suite");
  m["opencode_version"] = need("opencode_version");
  m["opencode_integrity"] = need("opencode_integrity");
  json::array inc;
  for (const auto& p : inputs.includes) inc.emplace_back(p);
  m["includes"] = std::move(inc);
  json::object pkgs;
  if (auto text = read_file_if_exists(build_dir / "packages.tsv")) {
    for (const auto& line : split(*text, '\n')) {
      auto tab = line.find('\t');
      if (tab == std::string::npos) continue;
      pkgs[line.substr(0, tab)] = line.substr(tab + 1);
    }
  }
  m["packages"] = std::move(pkgs);
  m["built"] = built;
  m["input_digest"] = digest;
  return m;
}

BuildResult build_image(const BuildOptions& opt, Progress& progress) {
  auto t0 = steady_clock::now();
  if (!valid_image_name(opt.name))
    throw Error("'" + opt.name + "' is not a valid image name",
                "use letters, digits, '.', '_' and '-'");
  fs::path script = guest_dir() / "debian" / "build";
  if (::access(script.c_str(), X_OK) != 0)
    throw Error("the image build script " + script.string() + " is missing or not executable",
                "reinstall agent-vm (scripts/setup), or set AGENT_VM_DATADIR to the folder "
                "holding guest/");

  BuildInputs in;
  in.files = guest_source_files();
  in.includes = opt.includes;
  std::sort(in.includes.begin(), in.includes.end());
  in.includes.erase(std::unique(in.includes.begin(), in.includes.end()), in.includes.end());
  for (const auto& p : in.includes)
    if (p.empty() || p[0] == '-' ||
        !std::all_of(p.begin(), p.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("+-.:=~_", c);
        }))
      throw Error("'" + p + "' is not a Debian package name", "pass --include NAME, e.g. --include golang");
  OpencodePin pin = parse_opencode_pin(read_file(guest_dir() / "common" / "opencode.pin"), opt.arch);
  in.opencode_version = opt.opencode_version.empty() ? pin.version : opt.opencode_version;
  in.opencode_integrity = in.opencode_version == pin.version ? pin.integrity : "";
  in.arch = opt.arch;
  in.lean = opt.lean;
  in.kernel_package = kernel_package(opt.arch);
  std::string digest = input_digest(in);

  FileLock lock = lock_image(opt.name);
  if (!opt.force) {
    try {
      Image cur = load_image(opt.name);
      if (cur.input_digest == digest) {
        progress.note("image '" + opt.name + "' is up to date (" + cur.dir.string() + ")");
        return {cur, false, duration_cast<milliseconds>(steady_clock::now() - t0)};
      }
    } catch (const Error&) {
      // missing or broken: build it
    }
  }
  remove_stale_staging(opt.name);
  TempDir staging("." + opt.name + ".staging", images_root());
  fs::path cache = cache_dir() / "guest";
  make_private_dir(cache, 0755);
  fs::path log = cache / ("build-" + opt.name + ".log");
  Fd log_fd(::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!log_fd) throw_errno("cannot write the build log " + log.string());

  std::vector<std::string> argv = {script.string(), "--out", staging.path().string(),
                                   "--cache", cache.string(), "--arch", debian_arch(opt.arch),
                                   "--opencode-version", in.opencode_version};
  if (in.lean) argv.push_back("--lean");
  if (!in.opencode_integrity.empty()) {
    argv.push_back("--opencode-integrity");
    argv.push_back(in.opencode_integrity);
  }
  for (const auto& p : in.includes) {
    argv.push_back("--include");
    argv.push_back(p);
  }
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) throw_errno("pipe");
  Fd rd(pipefd[0]), wr(pipefd[1]);
  SpawnOptions so;
  so.stdout_fd = wr.get();
  so.stderr_fd = log_fd.get();
  so.env = {"LC_ALL=C.UTF-8", "DEBIAN_FRONTEND=noninteractive"};
  so.own_group = false;  // Ctrl+C at the terminal stops the build with us
  Child child = spawn(argv, so);
  wr.reset();

  // Stage lines from the script; between them, the log's last line as detail.
  // Another architecture's packages are set up under qemu-user: measured at
  // 22 minutes on a loaded 2-core host, and over 30 under heavier load.
  auto allowed = opt.deadline;
  if (host_arch() != opt.arch) allowed = std::max(allowed, minutes(120));
  auto deadline = steady_clock::now() + allowed;
  std::string buf, stage;
  bool eof = false;
  while (!eof) {
    if (steady_clock::now() > deadline) {
      child.kill(SIGKILL);
      child.wait();
      throw Error("the image build took longer than " + std::to_string(allowed.count()) +
                      " minutes and was stopped (at stage '" + stage + "')",
                  "see " + log.string());
    }
    pollfd p{rd.get(), POLLIN, 0};
    int n = ::poll(&p, 1, 1000);
    if (n < 0 && errno != EINTR) throw_errno("poll");
    if (n > 0) {
      char tmp[4096];
      ssize_t got = ::read(rd.get(), tmp, sizeof tmp);
      if (got <= 0) {
        eof = true;
      } else {
        buf.append(tmp, static_cast<std::size_t>(got));
      }
      std::size_t nl;
      while ((nl = buf.find('\n')) != std::string::npos) {
        std::string line = buf.substr(0, nl);
        buf.erase(0, nl + 1);
        if (line.starts_with("stage ")) {
          stage = line.substr(6);
          progress.stage(stage);
        } else if (line.starts_with("done ")) {
          progress.done(line.substr(5));
        } else if (!line.empty()) {
          progress.note(line);
        }
      }
    } else if (progress.is_tty() && !stage.empty()) {
      auto text = read_file_if_exists(log).value_or("");
      std::string last = trim(tail_lines(text, 1));
      if (last.size() > 60) last = last.substr(0, 57) + "...";
      progress.update(last);
    }
  }
  int rc = child.wait();
  if (rc != 0) {
    std::string tail = tail_lines(read_file_if_exists(log).value_or(""), 12);
    throw Error("the image build failed" + (stage.empty() ? "" : " at stage '" + stage + "'") +
                    " (exit " + std::to_string(rc) + "); last lines of " + log.string() + ":\n" +
                    tail,
                "fix the cause above and run 'agent-vm image build' again (downloads are cached)");
  }

  progress.stage("manifest");
  json::object m = manifest_from_build(staging.path(), opt.name, in, digest, utc_now_iso8601());
  std::error_code ec;
  fs::remove(staging.path() / "build-info", ec);
  fs::remove(staging.path() / "packages.tsv", ec);
  write_file_atomic(staging.path() / "manifest.json", json::serialize(m) + "\n", 0644);
  parse_manifest(m, staging.path(), "the new image");  // every named file is there
  ::chmod(staging.path().c_str(), 0755);
  fs::path dest = images_root() / opt.name;
  if (!swap_into_place(staging.path(), dest)) staging.release();
  progress.done(dest.string());
  return {load_image(opt.name), true, duration_cast<milliseconds>(steady_clock::now() - t0)};
}

}  // namespace avm::launcher
