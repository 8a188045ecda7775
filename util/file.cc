#include "util/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <random>

#include "util/error.h"
#include "util/fd.h"

namespace avm {

namespace fs = std::filesystem;

std::optional<std::string> read_file_if_exists(const fs::path& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return std::nullopt;
    throw_errno("cannot read " + path.string());
  }
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("cannot read " + path.string());
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::string read_file(const fs::path& path) {
  auto s = read_file_if_exists(path);
  if (!s) throw Error("cannot read " + path.string() + ": no such file");
  return *s;
}

namespace {

void write_all(int fd, std::string_view data, const fs::path& what) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("cannot write " + what.string());
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
}

std::string random_suffix() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string s(8, 'x');
  for (auto& c : s) c = alphabet[rng() % (sizeof alphabet - 1)];
  return s;
}

}  // namespace

void write_file_atomic(const fs::path& path, std::string_view data, mode_t mode) {
  fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  // Built by appending: GCC 12's -Wrestrict misfires on "." + std::string&&.
  std::string name = ".";
  name += path.filename().string();
  name += ".tmp-";
  name += random_suffix();
  fs::path tmp = dir / name;
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (!fd) throw_errno("cannot create " + tmp.string());
  try {
    if (::fchmod(fd.get(), mode) != 0) throw_errno("cannot chmod " + tmp.string());
    write_all(fd.get(), data, tmp);
    if (::fsync(fd.get()) != 0) throw_errno("cannot fsync " + tmp.string());
    if (::close(fd.release()) != 0) throw_errno("cannot close " + tmp.string());
    if (::rename(tmp.c_str(), path.c_str()) != 0)
      throw_errno("cannot rename " + tmp.string() + " to " + path.string());
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
  // Make the rename itself durable.
  Fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd) ::fsync(dfd.get());
}

void make_private_dir(const fs::path& dir, mode_t mode) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error("cannot create " + dir.string() + ": " + ec.message());
  if (::chmod(dir.c_str(), mode) != 0) throw_errno("cannot chmod " + dir.string());
}

}  // namespace avm
