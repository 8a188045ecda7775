#include "sessions/env_file.h"

#include <algorithm>
#include <cstdlib>

#include "util/error.h"
#include "util/file.h"
#include "util/strings.h"

namespace avm::sessions {

bool is_valid_env_name(std::string_view n) {
  if (n.empty()) return false;
  auto alpha = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; };
  if (!alpha(n[0])) return false;
  return std::all_of(n.begin(), n.end(), [&](char c) { return alpha(c) || (c >= '0' && c <= '9'); });
}

EnvSelection collect_env(const std::vector<std::string>& names) {
  std::vector<std::string> wanted;
  for (const auto& n : names) {
    auto eq = n.find('=');
    if (eq != std::string::npos)
      throw Error("--env takes a variable name, not NAME=VALUE ('" + n.substr(0, eq) + "=...')",
                  "export " + n.substr(0, eq) + " in your shell and pass --env " + n.substr(0, eq) +
                      ": values on a command line are visible to every user");
    if (!is_valid_env_name(n))
      throw Error("'" + n + "' is not an environment variable name",
                  "use letters, digits and '_', not starting with a digit");
    if (n == "ANTHROPIC_API_KEY")
      throw Error("--env ANTHROPIC_API_KEY would copy the API key into the guest",
                  "drop it: the key stays in the session's host-only folder and the model gateway adds it to "
                  "the agent's requests");
    if (n == "ANTHROPIC_BASE_URL")
      throw Error("--env ANTHROPIC_BASE_URL would bypass the model gateway",
                  "drop it: ANTHROPIC_BASE_URL in your environment already names the gateway's upstream");
    wanted.push_back(n);
  }
  EnvSelection sel;
  std::vector<std::string> seen;
  for (const auto& n : wanted) {
    if (std::find(seen.begin(), seen.end(), n) != seen.end()) continue;
    seen.push_back(n);
    if (const char* v = std::getenv(n.c_str()))
      sel.vars.emplace_back(n, v);
    else
      sel.missing.push_back(n);
  }
  return sel;
}

std::string render_env(const EnvVars& vars) {
  std::string out;
  for (const auto& [k, v] : vars) {
    if (!is_valid_env_name(k)) throw Error("'" + k + "' is not an environment variable name");
    if (v.find('\n') != std::string::npos || v.find('\r') != std::string::npos ||
        v.find('\0') != std::string::npos)
      throw Error("the value of " + k + " holds a line break, which the env file cannot carry",
                  "set " + k + " to a single-line value");
    out += k + "=" + v + "\n";
  }
  return out;
}

EnvVars parse_env(std::string_view text) {
  EnvVars out;
  for (auto& [k, v] : parse_key_values(text))
    if (is_valid_env_name(k)) out.emplace_back(std::move(k), std::move(v));
  return out;
}

void write_env_file(const std::filesystem::path& path, const EnvVars& vars) {
  write_file_atomic(path, render_env(vars), 0600);
}

EnvVars read_env_file(const std::filesystem::path& path) {
  auto text = read_file_if_exists(path);
  return text ? parse_env(*text) : EnvVars{};
}

}  // namespace avm::sessions
