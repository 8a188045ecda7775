// SSH port allocation for the host forward on 127.0.0.1.
//
// A port is ours while we hold the flock on its lock file. The lock's fd is
// inherited by QEMU, so it stays held exactly as long as that VM runs, and a
// crash releases it with no cleanup. A free lock is not enough: the port must
// also bind on 127.0.0.1, so services outside agent-vm are never clobbered.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "util/flock.h"

namespace avm::launcher {

inline constexpr std::uint16_t kFirstPort = 2222;
inline constexpr std::uint16_t kLastPort = 3221;

struct PortReservation {
  std::uint16_t port;
  FileLock lock;  // hand to QEMU (make_inheritable) so it holds the port
  // Records who holds the port, for the messages other spawns print.
  void set_owner(const std::string& who);
};

// Who is using a port: an agent-vm session (from its lock file) or another
// process (platform::tcp_listener). Empty when unknown.
std::string describe_port_user(std::uint16_t port, const std::filesystem::path& lock_dir);

// The ports handed out when none is asked for.
struct PortRange {
  std::uint16_t first = kFirstPort, last = kLastPort;
};

// Reserves `wanted` (error naming the user of the port if taken), or the first
// free port in `range`. `lock_dir` defaults to util/paths runtime_dir()/ports.
PortReservation reserve_port(std::optional<std::uint16_t> wanted,
                             const std::filesystem::path& lock_dir = {}, PortRange range = {});
// Like reserve_port(nullopt) but tries `preferred` first (resume keeps its port
// when it can).
PortReservation reserve_port_preferring(std::uint16_t preferred,
                                        const std::filesystem::path& lock_dir = {},
                                        PortRange range = {});

// True when 127.0.0.1:port can be bound now (with SO_REUSEADDR, as QEMU does).
bool port_bindable(std::uint16_t port);

// Parses a user's --port value: 1..65535, else avm::Error naming the range.
std::uint16_t parse_port(const std::string& s);

}  // namespace avm::launcher
