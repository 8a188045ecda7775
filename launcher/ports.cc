#include "launcher/ports.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <sstream>

#include "util/error.h"
#include "util/fd.h"
#include "util/file.h"
#include "util/paths.h"
#include "util/platform.h"
#include "util/strings.h"

namespace avm::launcher {

namespace fs = std::filesystem;

namespace {

fs::path lock_dir_or_default(const fs::path& d) {
  fs::path dir = d.empty() ? runtime_dir() / "ports" : d;
  make_private_dir(dir);
  return dir;
}

fs::path lock_path(const fs::path& dir, std::uint16_t port) {
  return dir / (std::to_string(port) + ".lock");
}

}  // namespace

void PortReservation::set_owner(const std::string& who) {
  std::string text = who + "\n";
  if (::ftruncate(lock.fd(), 0) != 0 || ::pwrite(lock.fd(), text.data(), text.size(), 0) < 0)
    throw_errno("cannot write " + lock.path().string());
}

bool port_bindable(std::uint16_t port) {
  Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s) throw_errno("socket");
  int one = 1;
  ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return false;
  // Binding alone succeeds next to a listener bound with SO_REUSEADDR on some
  // kernels; listening does not.
  return ::listen(s.get(), 1) == 0;
}

std::string describe_port_user(std::uint16_t port, const fs::path& lock_dir) {
  fs::path dir = lock_dir.empty() ? runtime_dir() / "ports" : lock_dir;
  if (auto held = FileLock::try_acquire(lock_path(dir, port)); !held) {
    std::string who;
    try {
      who = trim(read_file(lock_path(dir, port)));
    } catch (const Error&) {
    }
    return who.empty() ? "another agent-vm VM" : who;
  }
  if (auto owner = platform::tcp_listener(port)) return owner->empty() ? "another process" : *owner;
  return {};
}

std::uint16_t parse_port(const std::string& s) {
  std::string t = trim(s);
  unsigned long v = 0;
  size_t used = 0;
  try {
    v = std::stoul(t, &used, 10);
  } catch (...) {
    used = 0;
  }
  if (t.empty() || used != t.size() || v < 1 || v > 65535)
    throw Error("invalid port '" + s + "'", "give a TCP port between 1 and 65535, e.g. --port 2222");
  return static_cast<std::uint16_t>(v);
}

namespace {

std::optional<PortReservation> try_port(const fs::path& dir, std::uint16_t port) {
  auto lock = FileLock::try_acquire(lock_path(dir, port));
  if (!lock) return std::nullopt;
  if (!port_bindable(port)) return std::nullopt;
  return PortReservation{port, std::move(*lock)};
}

}  // namespace

PortReservation reserve_port(std::optional<std::uint16_t> wanted, const fs::path& lock_dir,
                             PortRange range) {
  fs::path dir = lock_dir_or_default(lock_dir);
  if (wanted) {
    if (auto r = try_port(dir, *wanted)) return std::move(*r);
    std::string who = describe_port_user(*wanted, dir);
    throw Error("port " + std::to_string(*wanted) + " is in use" + (who.empty() ? "" : " (by " + who + ")"),
                "pass another --port, or leave --port out to take the first free one from " +
                    std::to_string(range.first));
  }
  for (unsigned p = range.first; p <= range.last; ++p)
    if (auto r = try_port(dir, static_cast<std::uint16_t>(p))) return std::move(*r);
  throw Error("no free SSH port between " + std::to_string(range.first) + " and " +
                  std::to_string(range.last),
              "stop sessions you do not need (agent-list, agent-stop) or pass --port");
}

PortReservation reserve_port_preferring(std::uint16_t preferred, const fs::path& lock_dir,
                                        PortRange range) {
  fs::path dir = lock_dir_or_default(lock_dir);
  if (preferred != 0)
    if (auto r = try_port(dir, preferred)) return std::move(*r);
  return reserve_port(std::nullopt, dir, range);
}

}  // namespace avm::launcher
