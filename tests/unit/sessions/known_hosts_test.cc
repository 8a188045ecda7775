#include "sessions/known_hosts.h"

#include <catch2/catch.hpp>

#include "sessions/keys.h"
#include "util/file.h"
#include "util/process.h"
#include "util/strings.h"
#include "util/temp_dir.h"

using namespace avm::sessions;
namespace fs = std::filesystem;

namespace {

// "ssh-ed25519 AAAA..." of a fresh key.
std::pair<std::string, std::string> fresh_key(const fs::path& dir, const std::string& name) {
  generate_session_keys(dir / name, name);
  auto parts = avm::split(avm::trim(avm::read_file(KeyFiles(dir / name).host_pub)), ' ');
  return {parts[0], parts[1]};
}

}  // namespace

TEST_CASE("a host key is checked against known_hosts, hashed or not", "[known_hosts]") {
  avm::TempDir tmp;
  auto [type, key] = fresh_key(tmp.path(), "a");
  auto [type2, other] = fresh_key(tmp.path(), "b");
  fs::path kh = tmp.path() / "known_hosts";
  avm::write_file_atomic(kh, "# comment\n[git.example]:2222 " + type + " " + key + "\n" +
                                 "plain.example " + type + " " + key + "\n");
  std::vector<fs::path> files{tmp.path() / "missing", kh};

  CHECK(check_known_host("git.example", 2222, type, key, files).verdict == HostKeyVerdict::Match);
  CHECK(check_known_host("plain.example", 22, type, key, files).verdict == HostKeyVerdict::Match);
  // Same host, another port: not known.
  CHECK(check_known_host("git.example", 22, type, key, files).verdict == HostKeyVerdict::Unknown);
  // Known with another key of the same type: a mismatch, with where.
  auto c = check_known_host("git.example", 2222, type, other, files);
  CHECK(c.verdict == HostKeyVerdict::Mismatch);
  CHECK(c.detail == kh.string() + ":2");
  // Known only with another type of key: unknown, not a mismatch.
  CHECK(check_known_host("git.example", 2222, "ecdsa-sha2-nistp256", "AAAAE2VjZHNh", files).verdict ==
        HostKeyVerdict::Unknown);

  // Hashed entries (ssh-keygen -H) work the same.
  REQUIRE(avm::run({"ssh-keygen", "-H", "-f", kh.string()}).exit_code == 0);
  CHECK(avm::read_file(kh).find("git.example") == std::string::npos);
  CHECK(check_known_host("git.example", 2222, type, key, files).verdict == HostKeyVerdict::Match);
  CHECK(check_known_host("git.example", 2222, type, other, files).verdict == HostKeyVerdict::Mismatch);

  // A revoked key is refused even if another line trusts it.
  avm::write_file_atomic(kh, "rev.example " + type + " " + key + "\n@revoked rev.example " + type + " " + key + "\n");
  CHECK(check_known_host("rev.example", 22, type, key, files).verdict == HostKeyVerdict::Revoked);
  CHECK(check_known_host("none.example", 22, type, key, {}).verdict == HostKeyVerdict::Unknown);
}
