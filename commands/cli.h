// The agent-vm entry point: argv[0] dispatch and subcommand parsing.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "commands/command.h"

namespace avm::cmd {

// Names installed as links to agent-vm, each naming one subcommand.
const std::vector<std::string>& link_names();

// "agent-spawn" (or "/usr/local/bin/agent-spawn") -> "spawn"; nullopt for
// agent-vm itself or anything that is not one of link_names().
std::optional<std::string> subcommand_for_program(std::string_view argv0);

// argv as agent-vm sees it: a link's name becomes "agent-vm <sub>".
std::vector<std::string> normalize_argv(const std::vector<std::string>& argv);

// Parses and runs one of `commands`; returns the exit code. Errors go to
// stderr. When argv names one of them, only that one declares its options:
// the others' CLI11 trees are not built at every start.
int run_cli(const std::vector<std::string>& argv, CommandList commands);

}  // namespace avm::cmd
