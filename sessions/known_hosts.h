// Checking a server's SSH host key against the user's known_hosts files
// (OpenSSH's, hashed entries included) for clones over ssh. Never
// trust-on-first-use: an unknown host is refused with its fingerprint.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace avm::sessions {

enum class HostKeyVerdict {
  Match,     // a known_hosts line carries this very key
  Mismatch,  // the host is known with another key of the same type
  Revoked,   // the key is marked @revoked
  Unknown,   // no line for this host (or only keys of other types)
};

struct HostKeyCheck {
  HostKeyVerdict verdict = HostKeyVerdict::Unknown;
  std::string detail;  // which file and line matched or contradicted
};

// The files OpenSSH reads: ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts.
std::vector<std::filesystem::path> default_known_hosts_files();

// Looks `host`:`port` up in `files` (missing files are skipped) with
// `ssh-keygen -F` and compares the key: `key_type` ("ssh-ed25519") and
// `key_base64` (the public key blob, base64). Throws avm::Error when
// ssh-keygen cannot run.
HostKeyCheck check_known_host(std::string_view host, std::uint16_t port, std::string_view key_type,
                              std::string_view key_base64,
                              const std::vector<std::filesystem::path>& files);

}  // namespace avm::sessions
