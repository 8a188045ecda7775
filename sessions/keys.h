// Per-session SSH keys, made at spawn (libssh): the client key pair the host
// logs in with, and the guest's host key, pinned from birth. The guest's
// sshd reads its host key and authorized_keys from /session/ssh; the host
// trusts exactly that host key and nothing else (no trust-on-first-use).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace avm::sessions {

// The files in a session's ssh/ folder.
struct KeyFiles {
  explicit KeyFiles(const std::filesystem::path& ssh_dir)
      : dir(ssh_dir),
        client_key(ssh_dir / "id_ed25519"),
        client_pub(ssh_dir / "id_ed25519.pub"),
        host_key(ssh_dir / "ssh_host_ed25519_key"),
        host_pub(ssh_dir / "ssh_host_ed25519_key.pub"),
        authorized_keys(ssh_dir / "authorized_keys"),
        known_hosts(ssh_dir / "known_hosts") {}
  std::filesystem::path dir, client_key, client_pub, host_key, host_pub, authorized_keys,
      known_hosts;
};

// Generates both ed25519 key pairs into `ssh_dir` (created 0700) in OpenSSH
// format, private keys 0600 and public keys 0644, and writes authorized_keys
// holding the client's public key. `comment` ends each public key line
// ("agent-vm session k3f9"). Replaces keys already there.
void generate_session_keys(const std::filesystem::path& ssh_dir, std::string_view comment);

// Writes known_hosts pinning the host key for `host` on `port`
// ("[127.0.0.1]:2222 ssh-ed25519 AAAA..."), for OpenSSH clients; call again
// when the port changes. attach() compares keys directly, whatever the port.
void pin_host_key(const std::filesystem::path& ssh_dir, std::uint16_t port,
                  std::string_view host = "127.0.0.1");

// The known_hosts name OpenSSH uses: "127.0.0.1" on port 22, "[127.0.0.1]:2222" otherwise.
std::string known_hosts_name(std::string_view host, std::uint16_t port);

// "SHA256:..." of a public (or private) key file, as `ssh-keygen -l` prints it.
std::string key_fingerprint(const std::filesystem::path& key_file);

}  // namespace avm::sessions
