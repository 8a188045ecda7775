// Whole-file reads and atomic replacement (temp file, fsync, rename, fsync
// of the directory): a reader sees the old content or the new, never half.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace avm {

std::string read_file(const std::filesystem::path& path);
// nullopt when the file does not exist; other errors throw.
std::optional<std::string> read_file_if_exists(const std::filesystem::path& path);

// Writes `data` to `path` atomically with the given mode. On any failure the
// previous file is untouched and no temporary file is left behind.
void write_file_atomic(const std::filesystem::path& path, std::string_view data,
                       mode_t mode = 0644);

// Creates `dir` (and parents) and forces its mode; throws with the path on error.
void make_private_dir(const std::filesystem::path& dir, mode_t mode = 0700);

}  // namespace avm
