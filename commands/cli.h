// The agent-vm entry point: argv[0] dispatch and subcommand parsing.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace avm::cmd {

// Names installed as links to agent-vm, each naming one subcommand.
const std::vector<std::string>& link_names();

// "agent-spawn" (or "/usr/local/bin/agent-spawn") -> "spawn"; nullopt for
// agent-vm itself or anything that is not one of link_names().
std::optional<std::string> subcommand_for_program(std::string_view argv0);

// argv as agent-vm sees it: a link's name becomes "agent-vm <sub>".
std::vector<std::string> normalize_argv(const std::vector<std::string>& argv);

// Parses and runs; returns the exit code. Errors go to stderr.
int run_cli(const std::vector<std::string>& argv);

}  // namespace avm::cmd
