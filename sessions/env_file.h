// The session's env file: KEY=VALUE lines the guest exports to the agent
// (the gateway's URL, a placeholder key, proxy settings and any --env NAME).
// Values come from this process's environment and go straight into a 0600
// file: a secret never appears in any argv. The guest reads the file: the
// real API key is never in it (it stays in the host-only folder).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace avm::sessions {

using EnvVars = std::vector<std::pair<std::string, std::string>>;

// Names --env refuses: the key would land in the guest, and the base URL is
// the gateway's.
inline constexpr std::string_view kHostOnlyEnvNames[] = {"ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"};

// [A-Za-z_][A-Za-z0-9_]*
bool is_valid_env_name(std::string_view name);

struct EnvSelection {
  EnvVars vars;                      // found, in the order asked, without duplicates
  std::vector<std::string> missing;  // asked for but not set
};

// Looks up `names` in the environment. Throws avm::Error for an invalid
// name, for "NAME=VALUE" (a value on the command line would be visible in
// /proc/*/cmdline), and for kHostOnlyEnvNames.
EnvSelection collect_env(const std::vector<std::string>& names);

// "KEY=VALUE\n" lines. Throws for a value holding a newline or NUL, which
// the file cannot carry.
std::string render_env(const EnvVars& vars);
EnvVars parse_env(std::string_view text);

// Writes the file atomically with mode 0600.
void write_env_file(const std::filesystem::path& path, const EnvVars& vars);
EnvVars read_env_file(const std::filesystem::path& path);

}  // namespace avm::sessions
