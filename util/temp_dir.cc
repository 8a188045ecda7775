#include "util/temp_dir.h"

#include <cstdlib>
#include <system_error>
#include <utility>

#include "util/error.h"

namespace avm {

namespace fs = std::filesystem;

TempDir::TempDir(const std::string& prefix, const fs::path& parent) {
  fs::path base = parent;
  if (base.empty()) {
    const char* t = std::getenv("TMPDIR");
    base = (t && *t) ? t : "/tmp";
  }
  std::string tmpl = (base / (prefix + ".XXXXXX")).string();
  if (!::mkdtemp(tmpl.data())) throw_errno("cannot create a temporary directory in " + base.string());
  path_ = tmpl;
}

TempDir::TempDir(TempDir&& o) noexcept : path_(std::exchange(o.path_, {})) {}

TempDir::~TempDir() {
  if (path_.empty()) return;
  std::error_code ec;
  fs::remove_all(path_, ec);
}

fs::path TempDir::release() noexcept { return std::exchange(path_, {}); }

}  // namespace avm
