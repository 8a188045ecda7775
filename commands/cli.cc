#include "commands/cli.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "commands/command.h"
#include "util/error.h"

namespace avm::cmd {

const std::vector<std::string>& link_names() {
  static const std::vector<std::string> names = {
      "agent-spawn", "agent-list", "agent-attach", "agent-stop",
      "agent-resume", "agent-rm", "agent-logs", "agent-exec", "agent-test"};
  return names;
}

std::optional<std::string> subcommand_for_program(std::string_view argv0) {
  std::string base = std::filesystem::path(std::string(argv0)).filename().string();
  for (const auto& n : link_names())
    if (base == n) return n.substr(std::string_view("agent-").size());
  return std::nullopt;
}

std::vector<std::string> normalize_argv(const std::vector<std::string>& argv) {
  if (argv.empty()) return {"agent-vm"};
  std::vector<std::string> out;
  if (auto sub = subcommand_for_program(argv[0])) {
    out.push_back("agent-vm");
    out.push_back(*sub);
  } else {
    out.push_back(argv[0]);
  }
  out.insert(out.end(), argv.begin() + 1, argv.end());
  return out;
}

namespace {

constexpr const char* kDescription =
    "agent-vm runs coding agents in throwaway QEMU microVMs. Each session is a\n"
    "folder on the host holding a git clone and the agent's state; the VM mounts\n"
    "it over 9p and can be stopped, resumed or thrown away without losing work.\n"
    "\n"
    "The seed's commands are installed as links: agent-spawn, agent-attach,\n"
    "agent-stop, agent-resume, agent-rm, agent-logs, agent-exec, agent-test\n"
    "are the same as 'agent-vm spawn', 'agent-vm attach', and so on.\n"
    "agent-list is 'agent-vm list' as a program of its own, which starts faster.";

constexpr const char* kFooter =
    "ENVIRONMENT\n"
    "  ANTHROPIC_API_KEY   API key for the model: stays on the host (the session's\n"
    "                      host-only folder, mode 0600); the model gateway adds it\n"
    "                      to the agent's requests. Never in the guest\n"
    "  ANTHROPIC_BASE_URL  the model API the gateway forwards to (default\n"
    "                      https://api.anthropic.com)\n"
    "  AGENT_VM_SESSIONS   sessions folder (default ~/.agent-vm/sessions)\n"
    "  AGENT_VM_IMAGES     guest images folder (default ~/.agent-vm/images)\n"
    "  AGENT_VM_ACCEL      default accelerator: auto, kvm or tcg\n"
    "\n"
    "Run 'agent-vm <command> --help' for a command's options.";

// The top-level --help lists each subcommand with its one-line summary; a
// subcommand's own --help shows its whole description.
class Formatter : public CLI::Formatter {
 public:
  std::string make_subcommand(const CLI::App* sub) const override {
    std::stringstream out;
    std::string d = sub->get_description();
    CLI::detail::format_help(out, sub->get_display_name(true), d.substr(0, d.find('\n')), column_width_);
    return out.str();
  }
};

std::string display_name(const std::vector<std::string>& original, const std::string& sub) {
  if (!original.empty() && subcommand_for_program(original[0])) return "agent-" + sub;
  return sub.empty() ? "agent-vm" : "agent-vm " + sub;
}

}  // namespace

int run_cli(const std::vector<std::string>& original, CommandList commands) {
  std::vector<std::string> argv = normalize_argv(original);
  CLI::App app{kDescription, "agent-vm"};
  app.footer(kFooter);
  app.formatter(std::make_shared<Formatter>());
  app.set_version_flag("--version,-V", std::string("agent-vm ") + AGENT_VM_VERSION);
  app.require_subcommand(0, 1);
  app.fallthrough(false);

  // The command argv names, if it names one: only it is configured.
  if (argv.size() > 1) {
    auto named = std::find_if(commands.begin(), commands.end(), [&](const auto& c) { return c->name() == argv[1]; });
    if (named != commands.end()) {
      CommandList one;
      one.push_back(std::move(*named));
      commands = std::move(one);
    }
  }
  std::vector<std::pair<CLI::App*, Command*>> subs;
  for (auto& c : commands) {
    CLI::App* sub = app.add_subcommand(c->name(), c->summary());
    sub->fallthrough(false);
    if (c->summary().empty()) sub->group("");  // internal: not listed in --help
    c->configure(*sub);
    // configure() may replace the description with a long one: the summary
    // stays its first line.
    std::string desc = sub->get_description();
    if (desc != c->summary()) sub->description(c->summary() + "\n\n" + desc);
    subs.emplace_back(sub, c.get());
  }

  // CLI11 wants argv without the program name, last argument first.
  std::vector<std::string> rest(argv.rbegin(), argv.rend() - 1);
  std::string sub_name;
  try {
    app.parse(rest);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    for (auto& [sub, cmd] : subs)
      if (sub->parsed()) sub_name = cmd->name();
    std::string prog = display_name(original, sub_name);
    std::cerr << prog << ": " << e.what() << "\n"
              << "Run '" << prog << " --help' for usage.\n";
    return 2;
  }

  for (auto& [sub, cmd] : subs) {
    if (!sub->parsed()) continue;
    std::string prog = display_name(original, cmd->name());
    try {
      return cmd->run();
    } catch (const Error& e) {
      std::cerr << prog << ": error: " << e.what() << "\n";
      if (!e.hint().empty()) std::cerr << "  hint: " << e.hint() << "\n";
      return 1;
    } catch (const std::exception& e) {
      std::cerr << prog << ": internal error: " << e.what() << "\n";
      return 1;
    }
  }
  std::cerr << "agent-vm: no command given; one of:";
  for (auto& c : commands) std::cerr << " " << c->name();
  std::cerr << "\nRun 'agent-vm --help' for usage.\n";
  return 2;
}

}  // namespace avm::cmd
