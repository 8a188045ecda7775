#include "sessions/known_hosts.h"

#include <sstream>

#include "sessions/keys.h"
#include "util/error.h"
#include "util/paths.h"
#include "util/process.h"
#include "util/strings.h"

namespace avm::sessions {

namespace fs = std::filesystem;

std::vector<fs::path> default_known_hosts_files() {
  std::vector<fs::path> out;
  try {
    out.push_back(home_dir() / ".ssh" / "known_hosts");
  } catch (const Error&) {
  }
  out.emplace_back("/etc/ssh/ssh_known_hosts");
  return out;
}

HostKeyCheck check_known_host(std::string_view host, std::uint16_t port, std::string_view key_type,
                              std::string_view key_base64, const std::vector<fs::path>& files) {
  if (!find_program("ssh-keygen"))
    throw Error("cannot check the SSH host key of " + std::string(host) + ": ssh-keygen is not installed",
                "install openssh-client");
  const std::string name = known_hosts_name(host, port);
  HostKeyCheck result;
  for (const auto& file : files) {
    std::error_code ec;
    if (!fs::is_regular_file(file, ec)) continue;
    // -F prints every line for the host, hashed or not, with its marker.
    RunResult r = run({"ssh-keygen", "-F", name, "-f", file.string()},
                      {.timeout = std::chrono::seconds(10)});
    if (r.exit_code != 0 && r.exit_code != 1)
      throw Error("ssh-keygen -F " + name + " -f " + file.string() + " failed: " + trim(r.err));
    std::string line_no;
    for (const auto& line : split(r.out, '\n')) {
      if (line.empty()) continue;
      if (line[0] == '#') {
        auto at = line.find("line ");
        line_no = at == std::string::npos ? "" : trim(line.substr(at + 5));
        continue;
      }
      std::istringstream in(line);
      std::string marker, hosts, type, blob;
      in >> hosts;
      if (!hosts.empty() && hosts[0] == '@') {
        marker = hosts;
        in >> hosts;
      }
      in >> type >> blob;
      if (marker == "@cert-authority") continue;  // we do not do host certificates
      std::string where = file.string() + (line_no.empty() ? "" : ":" + line_no);
      if (blob == key_base64) {
        if (marker == "@revoked") return {HostKeyVerdict::Revoked, where};
        if (result.verdict != HostKeyVerdict::Match) result = {HostKeyVerdict::Match, where};
      } else if (type == key_type && marker.empty() && result.verdict == HostKeyVerdict::Unknown) {
        result = {HostKeyVerdict::Mismatch, where};
      }
    }
  }
  return result;
}

}  // namespace avm::sessions
