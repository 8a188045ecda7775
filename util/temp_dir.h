// A temporary directory removed with everything in it when its owner goes.
#pragma once

#include <filesystem>
#include <string>

namespace avm {

class TempDir {
 public:
  // Created under `parent` (default: $TMPDIR or /tmp) with mode 0700.
  explicit TempDir(const std::string& prefix = "agent-vm",
                   const std::filesystem::path& parent = {});
  TempDir(TempDir&& o) noexcept;
  TempDir& operator=(TempDir&&) = delete;
  TempDir(const TempDir&) = delete;
  ~TempDir();

  const std::filesystem::path& path() const noexcept { return path_; }
  // Keeps the directory: the caller now owns it.
  std::filesystem::path release() noexcept;

 private:
  std::filesystem::path path_;
};

}  // namespace avm
