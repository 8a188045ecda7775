#include "sessions/keys.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "util/error.h"
#include "util/file.h"
#include "util/process.h"
#include "util/strings.h"
#include "util/temp_dir.h"

using namespace avm::sessions;
namespace fs = std::filesystem;

namespace {

mode_t mode_of(const fs::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

// `ssh-keygen -l -f FILE`: "256 SHA256:... comment (ED25519)".
std::string ssh_keygen_l(const fs::path& f) {
  auto r = avm::run({"ssh-keygen", "-l", "-f", f.string()});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  return avm::trim(r.out);
}

}  // namespace

TEST_CASE("session keys are OpenSSH ed25519 keys with private modes", "[keys]") {
  avm::TempDir tmp;
  fs::path ssh = tmp.path() / "ssh";
  generate_session_keys(ssh, "agent-vm session k3f9ab");
  KeyFiles k(ssh);
  CHECK(mode_of(ssh) == 0700);
  CHECK(mode_of(k.client_key) == 0600);
  CHECK(mode_of(k.host_key) == 0600);
  CHECK(mode_of(k.authorized_keys) == 0600);
  CHECK(mode_of(k.client_pub) == 0644);
  CHECK(mode_of(k.host_pub) == 0644);

  CHECK(avm::read_file(k.client_key).starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
  CHECK(avm::read_file(k.host_key).starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
  std::string pub = avm::read_file(k.client_pub);
  CHECK(pub.starts_with("ssh-ed25519 AAAA"));
  CHECK(pub.find(" agent-vm session k3f9ab\n") != std::string::npos);
  CHECK(avm::read_file(k.authorized_keys) == pub);

  // OpenSSH reads them, and each private key matches its public half.
  for (auto f : {k.client_key, k.client_pub, k.host_key, k.host_pub}) {
    std::string l = ssh_keygen_l(f);
    CHECK(l.find("(ED25519)") != std::string::npos);
  }
  std::string client_fp = key_fingerprint(k.client_pub);
  CHECK(client_fp.starts_with("SHA256:"));
  CHECK(ssh_keygen_l(k.client_key).find(client_fp) != std::string::npos);
  CHECK(ssh_keygen_l(k.client_pub).find(client_fp) != std::string::npos);
  CHECK(ssh_keygen_l(k.host_key).find(key_fingerprint(k.host_pub)) != std::string::npos);
  CHECK(key_fingerprint(k.host_pub) != client_fp);
  // The private key derives the same public key (ssh-keygen -y).
  auto y = avm::run({"ssh-keygen", "-y", "-f", k.host_key.string()});
  REQUIRE(y.exit_code == 0);
  CHECK(avm::read_file(k.host_pub).starts_with(avm::trim(y.out)));
}

TEST_CASE("each session gets fresh keys", "[keys]") {
  avm::TempDir tmp;
  generate_session_keys(tmp.path() / "a", "a");
  generate_session_keys(tmp.path() / "b", "b");
  CHECK(key_fingerprint(KeyFiles(tmp.path() / "a").host_pub) !=
        key_fingerprint(KeyFiles(tmp.path() / "b").host_pub));
}

TEST_CASE("known_hosts pins the host key for the forwarded port", "[keys]") {
  avm::TempDir tmp;
  fs::path ssh = tmp.path() / "ssh";
  generate_session_keys(ssh, "s");
  KeyFiles k(ssh);
  pin_host_key(ssh, 2222);
  std::string host_pub = avm::read_file(k.host_pub);
  std::string key_part = host_pub.substr(0, host_pub.rfind(' '));
  CHECK(avm::read_file(k.known_hosts) == "[127.0.0.1]:2222 " + key_part + "\n");
  // OpenSSH finds it under that name, and only that one.
  auto r = avm::run({"ssh-keygen", "-F", "[127.0.0.1]:2222", "-f", k.known_hosts.string()});
  CHECK(r.exit_code == 0);
  CHECK(r.out.find(key_part) != std::string::npos);
  CHECK(avm::run({"ssh-keygen", "-F", "[127.0.0.1]:2223", "-f", k.known_hosts.string()}).exit_code == 1);
  // Re-pinning for a new port replaces the line.
  pin_host_key(ssh, 2300);
  CHECK(avm::read_file(k.known_hosts) == "[127.0.0.1]:2300 " + key_part + "\n");
  CHECK(known_hosts_name("127.0.0.1", 22) == "127.0.0.1");
}

TEST_CASE("reading a damaged key says so", "[keys]") {
  avm::TempDir tmp;
  avm::write_file_atomic(tmp.path() / "bad.pub", "ssh-ed25519 not-base64\n");
  CHECK_THROWS_WITH(key_fingerprint(tmp.path() / "bad.pub"), Catch::Contains("cannot read the SSH key"));
  CHECK_THROWS_AS(pin_host_key(tmp.path(), 2222), avm::Error);
}
