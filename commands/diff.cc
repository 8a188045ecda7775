// agent-vm diff: what the agent changed since the session's start commit.
#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <cstdio>
#include <iostream>

#include "commands/command.h"
#include "commands/common.h"
#include "commands/render.h"
#include "commands/workback_print.h"
#include "sessions/workback.h"

namespace avm::cmd {

namespace {

namespace json = boost::json;

std::string octal(std::uint32_t mode) {
  if (!mode) return "";
  char buf[16];
  std::snprintf(buf, sizeof buf, "%06o", static_cast<unsigned>(mode));
  return buf;
}

json::object to_json(const sessions::WorkDiff& d) {
  json::array commits, files;
  for (const auto& c : d.commits) commits.push_back(json::object{{"sha", c.sha}, {"subject", c.subject}});
  for (const auto& f : d.files) {
    json::object o{{"path", f.path},       {"status", f.status},     {"added", f.added},
                   {"removed", f.removed}, {"binary", f.binary},     {"old_mode", octal(f.old_mode)},
                   {"new_mode", octal(f.new_mode)}};
    if (!f.old_path.empty()) o["old_path"] = f.old_path;
    files.push_back(o);
  }
  return json::object{{"id", d.id},
                      {"base", d.base},
                      {"head", d.head},
                      {"head_branch", d.head_name.empty() ? json::value(nullptr) : json::value(d.head_name)},
                      {"running", d.running},
                      {"commits", commits},
                      {"uncommitted", d.uncommitted},
                      {"files", files},
                      {"warnings", cmd::to_json(d.warnings)},
                      {"defused", cmd::to_json(d.defused)}};
}

void print_stat(std::ostream& out, const sessions::WorkDiff& d) {
  std::size_t width = 0;
  for (const auto& f : d.files) width = std::max(width, f.path.size());
  std::size_t adds = 0, dels = 0;
  for (const auto& f : d.files) {
    std::string name = f.old_path.empty() ? f.path : f.old_path + " => " + f.path;
    out << " " << name << std::string(width > name.size() ? width - name.size() : 0, ' ') << " | ";
    if (f.binary) {
      out << "Bin";
    } else {
      out << f.added + f.removed << " " << std::string(std::min<std::size_t>(f.added, 40), '+')
          << std::string(std::min<std::size_t>(f.removed, 40), '-');
    }
    if (f.status != "modified") out << " (" << f.status << ")";
    out << "\n";
    adds += f.added;
    dels += f.removed;
  }
  out << " " << d.files.size() << " file" << (d.files.size() == 1 ? "" : "s") << " changed, " << adds
      << " insertions(+), " << dels << " deletions(-)\n";
}

class Diff final : public Command {
 public:
  std::string name() const override { return "diff"; }
  std::string summary() const override { return "Show what the agent changed since the session started"; }

  void configure(CLI::App& app) override {
    app.description(
        "Shows the agent's work: its commits since the commit the session started\n"
        "from (whatever branch it is on), and what it left uncommitted or untracked in\n"
        "its work tree (files ignored by the repo's .gitignore excluded), as one diff\n"
        "from the start commit to the work tree as it is on disk. The patch goes to\n"
        "stdout; the list of commits and warnings to stderr.\n"
        "\n"
        "The session's repository is read with libgit2 as data: none of its git\n"
        "config, hooks, attributes or filters is used, and no program runs. Warnings\n"
        "name risky changes: CI and automation files, .gitattributes, .gitmodules,\n"
        ".envrc, editor task files, files made executable, and git config keys or\n"
        "hooks in the session repo that would run a program if git ran there.\n"
        "A stopped session's repo is defused first (see agent-stop). A running\n"
        "session can be read too, but the agent may change files meanwhile.");
    app.add_option("id", id_, "Session id, or any unique prefix of one")->required();
    app.add_flag("--stat", stat_, "A summary per file instead of the patch");
    app.add_flag("--json", json_,
                 "Print JSON: commits (sha, subject), uncommitted, files (path, status, added,\n"
                 "removed, binary, modes) and warnings");
    app.footer(
        "EXAMPLES\n"
        "  agent-vm diff k3f9 | less\n"
        "  agent-vm diff --stat k3f9\n"
        "  agent-vm diff --json k3f9 | jq -r '.files[].path'");
  }

  int run() override {
    auto store = open_store();
    sessions::DiffOptions o;
    o.patch = !stat_ && !json_;
    auto d = sessions::diff(store, id_, o);
    if (json_) {
      print_json(std::cout, to_json(d));
      return 0;
    }
    std::ostream& notes = stat_ ? std::cout : std::cerr;
    if (d.running) print_running_note(notes, d.id);
    print_defused(notes, d.defused);
    notes << "session " << d.id << ": " << d.commits.size() << " commit" << (d.commits.size() == 1 ? "" : "s")
          << " since " << d.base.substr(0, 12) << (d.uncommitted ? ", plus uncommitted work" : "") << "\n";
    for (const auto& c : d.commits) notes << "  " << c.sha.substr(0, 12) << " " << c.subject << "\n";
    if (stat_)
      print_stat(std::cout, d);
    else
      std::cout << d.patch << std::flush;
    print_warnings(notes, d.warnings);
    return 0;
  }

 private:
  std::string id_;
  bool stat_ = false, json_ = false;
};

}  // namespace

std::unique_ptr<Command> make_diff() { return std::make_unique<Diff>(); }

}  // namespace avm::cmd
