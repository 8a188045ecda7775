#include "sessions/workback_rules.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <tuple>

namespace avm::sessions {

namespace {

std::string lower(std::string_view s) {
  std::string o(s);
  for (auto& c : o) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return o;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

// A cursor over config text that counts lines.
struct Cursor {
  std::string_view t;
  std::size_t i = 0;
  std::size_t line = 0;
  bool done() const { return i >= t.size(); }
  char peek() const { return done() ? '\0' : t[i]; }
  char get() {
    char c = t[i++];
    if (c == '\n') ++line;
    return c;
  }
  void skip_space() {
    while (!done() && is_space(peek())) ++i;
  }
  // To the end of the line, newline included.
  void skip_line() {
    while (!done() && peek() != '\n') ++i;
    if (!done()) get();
  }
};

// A value after '=': quotes, escapes, comments and continuation lines as
// git reads them. Returns false on a malformed value (bad escape, open quote).
bool read_value(Cursor& c, std::string& out) {
  bool quoted = false;
  std::size_t keep = 0;  // length of `out` without trailing unquoted blanks
  c.skip_space();
  while (!c.done()) {
    char ch = c.get();
    if (ch == '\n') {
      if (quoted) return false;
      break;
    }
    if (!quoted && (ch == '#' || ch == ';')) {
      c.skip_line();
      break;
    }
    if (ch == '"') {
      quoted = !quoted;
      keep = out.size();
      continue;
    }
    if (ch == '\\') {
      if (c.done()) return false;
      char e = c.get();
      switch (e) {
        case '\n': continue;  // continuation
        case '\r':
          if (c.peek() == '\n') {
            c.get();
            continue;
          }
          return false;
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'b': if (!out.empty()) out.pop_back(); break;
        case '\\': out += '\\'; break;
        case '"': out += '"'; break;
        default: return false;
      }
      keep = out.size();
      continue;
    }
    if (!quoted && is_space(ch)) {
      if (!out.empty()) out += ch;  // leading blanks skipped, trailing trimmed below
      continue;
    }
    out += ch;
    keep = out.size();
  }
  if (quoted) return false;
  out.resize(keep);
  return true;
}

// "[section]", "[section \"sub\"]" or "[section.sub]"; the cursor is past '['.
bool read_header(Cursor& c, std::string& section) {
  std::string name;
  while (!c.done() && (std::isalnum(static_cast<unsigned char>(c.peek())) || c.peek() == '-' || c.peek() == '.'))
    name += c.get();
  if (name.empty()) return false;
  if (c.peek() == ']') {
    c.get();
    // The old "[section.sub]" form: the whole name lowercased.
    section = lower(name);
    return true;
  }
  if (name.find('.') != std::string::npos) return false;
  c.skip_space();
  if (c.peek() != '"') return false;
  c.get();
  std::string sub;
  for (;;) {
    if (c.done() || c.peek() == '\n') return false;
    char ch = c.get();
    if (ch == '"') break;
    if (ch == '\\') {
      if (c.done() || c.peek() == '\n') return false;
      ch = c.get();
    }
    sub += ch;
  }
  if (c.peek() != ']') return false;
  c.get();
  section = lower(name) + "." + sub;
  return true;
}

bool falsy(std::string_view v) {
  std::string l = lower(v);
  return l == "false" || l == "no" || l == "off" || l == "0" || l.empty();
}

// (section, subsection, name) of "section[.sub].name".
std::tuple<std::string, std::string, std::string> split_key(const std::string& key) {
  auto first = key.find('.');
  auto last = key.rfind('.');
  if (first == std::string::npos) return {key, "", ""};
  std::string sub = first == last ? "" : key.substr(first + 1, last - first - 1);
  return {key.substr(0, first), sub, key.substr(last + 1)};
}

bool under(std::string_view path, std::string_view folder) {
  return path.size() > folder.size() && path.substr(0, folder.size()) == folder && path[folder.size()] == '/';
}

std::string base_name(std::string_view path) {
  auto s = path.rfind('/');
  return std::string(s == std::string_view::npos ? path : path.substr(s + 1));
}

}  // namespace

std::vector<ConfigEntry> parse_git_config(std::string_view text) {
  std::vector<ConfigEntry> out;
  Cursor c{text};
  if (text.substr(0, 3) == "\xEF\xBB\xBF") c.i = 3;
  std::string section;
  auto bad_line = [&](std::size_t first, std::size_t start) {
    // Back to the start of the line, report it whole and move on.
    c.i = start;
    c.line = first;
    std::size_t end = text.find('\n', start);
    std::string raw(text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    c.skip_line();
    out.push_back({"?", raw, first, c.line + (c.done() && (text.empty() || text.back() != '\n') ? 1 : 0)});
  };
  while (!c.done()) {
    std::size_t line_start = c.i;
    std::size_t first = c.line;
    std::size_t key_column = 0;
    c.skip_space();
    char ch = c.peek();
    if (ch == '\n') {
      c.get();
      continue;
    }
    if (ch == '\0' && c.done()) break;
    if (ch == '#' || ch == ';') {
      c.skip_line();
      continue;
    }
    if (ch == '[') {
      c.get();
      if (!read_header(c, section)) {
        section.clear();  // what follows cannot be attributed to a section
        bad_line(first, line_start);
        continue;
      }
      // A key may follow the header on the same line.
      c.skip_space();
      if (c.peek() == '\n' || c.done() || c.peek() == '#' || c.peek() == ';') {
        c.skip_line();
        continue;
      }
      key_column = c.i - line_start;
      line_start = c.i;
      ch = c.peek();
    }
    if (!std::isalpha(static_cast<unsigned char>(ch)) || section.empty()) {
      bad_line(first, line_start);
      continue;
    }
    std::string name;
    while (!c.done() && (std::isalnum(static_cast<unsigned char>(c.peek())) || c.peek() == '-')) name += c.get();
    c.skip_space();
    ConfigEntry e;
    e.key = section + "." + lower(name);
    e.first_line = first;
    e.key_column = key_column;
    if (c.done() || c.peek() == '\n') {
      e.value = "true";
      if (!c.done()) c.get();
    } else if (c.peek() == '#' || c.peek() == ';') {
      e.value = "true";
      c.skip_line();
    } else if (c.peek() == '=') {
      c.get();
      if (!read_value(c, e.value)) {
        bad_line(first, line_start);
        continue;
      }
    } else {
      bad_line(first, line_start);
      continue;
    }
    // The entry ends where the cursor is: past its newline, or at the end.
    e.end_line = c.line + ((c.done() && !text.empty() && text.back() != '\n') ? 1 : 0);
    out.push_back(std::move(e));
  }
  return out;
}

std::string risky_config_key(const ConfigEntry& e) {
  if (e.key == "?") return "a line git may read differently from this reader";
  auto [section, sub, name] = split_key(e.key);
  const std::string& v = e.value;
  auto is = [&](std::string_view s, std::string_view n) { return section == s && sub.empty() && name == n; };
  auto any = [&](std::string_view s, std::string_view n) { return section == s && !sub.empty() && name == n; };

  if (is("core", "fsmonitor")) return falsy(v) ? "" : "runs a program on every git status";
  if (is("core", "hookspath")) return "makes git run hooks from another folder";
  if (is("core", "worktree")) return "points git's work tree at another folder (checkout writes there)";
  if (is("core", "sshcommand") || is("core", "gitproxy")) return "runs a program when git connects";
  if (is("core", "pager") || section == "pager") return "runs a program as git's pager";
  if (is("core", "editor") || is("sequence", "editor")) return "runs a program as git's editor";
  if (is("core", "askpass")) return "runs a program to ask for passwords";
  if (is("core", "alternaterefscommand")) return "runs a program when git reads alternates";
  if (section == "filter" && (name == "clean" || name == "smudge" || name == "process"))
    return "runs a program on files as git reads or writes them";
  if (section == "diff" && (name == "textconv" || name == "command")) return "runs a program on git diff";
  if (is("diff", "external")) return "runs a program on git diff";
  if (section == "merge" && name == "driver") return "runs a program on git merge";
  if (section == "credential" && name == "helper") return "runs a program to fetch credentials";
  if (section == "gpg" && (name == "program" || name == "defaultkeycommand"))
    return "runs a program to sign or verify";
  if (section == "alias" && !v.empty() && v.find_first_not_of(" \t") != std::string::npos &&
      v[v.find_first_not_of(" \t")] == '!')
    return "an alias that runs a shell command";
  if (is("include", "path") || any("includeif", "path")) return "loads more configuration from another file";
  if (section == "remote" && (name == "uploadpack" || name == "receivepack" || name == "vcs"))
    return "runs a program on fetch or push";
  if (is("uploadpack", "packobjectshook")) return "runs a program when serving fetches";
  if ((section == "difftool" || section == "mergetool") && (name == "cmd" || name == "path"))
    return "runs a program as a diff or merge tool";
  if ((section == "browser" || section == "man") && (name == "cmd" || name == "path"))
    return "runs a program to show help";
  if (section == "guitool" && name == "cmd") return "runs a program from git gui";
  if (section == "trailer" && (name == "command" || name == "cmd")) return "runs a program on commit trailers";
  if (section == "tar" && name == "command") return "runs a program on git archive";
  if (section == "hook" && name == "command") return "runs a program as a hook";
  if (section == "submodule" && name == "update" && !v.empty() && v[0] == '!')
    return "runs a shell command on submodule update";
  if (section == "sendemail" &&
      (name == "sendmailcmd" || name == "smtpserver" || name == "tocmd" || name == "cccmd"))
    return "runs a program on git send-email";
  if (is("imap", "tunnel")) return "runs a program on git imap-send";
  if (is("instaweb", "httpd")) return "runs a program on git instaweb";
  return "";
}

std::string strip_config_entries(std::string_view text, const std::vector<ConfigEntry>& remove) {
  std::string out;
  std::size_t line = 0, pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    std::size_t next = end == std::string_view::npos ? text.size() : end + 1;
    bool drop = std::any_of(remove.begin(), remove.end(),
                            [&](const ConfigEntry& e) { return line >= e.first_line && line < e.end_line; });
    std::string_view l = text.substr(pos, next - pos);
    if (drop) {
      // A key on a header's line ("[core] fsmonitor = x"): keep the header.
      for (const auto& e : remove)
        if (line == e.first_line && e.key_column > 0) out += std::string(l.substr(0, e.key_column)) + "\n";
    } else {
      out += l;
    }
    pos = next;
    ++line;
  }
  return out;
}

bool is_live_hook(std::string_view name) { return !name.empty() && !name.ends_with(".sample"); }

std::vector<Warning> classify(const std::vector<ChangedPath>& changes, const std::vector<ConfigEntry>& config,
                              const std::vector<std::string>& hooks) {
  std::vector<Warning> out;
  for (const auto& ch : changes) {
    if (ch.status == "deleted") continue;
    const std::string& p = ch.path;
    std::string base = base_name(p);
    if (under(p, ".github/workflows") || under(p, ".github/actions") || p == ".gitlab-ci.yml" ||
        under(p, ".gitlab") || under(p, ".circleci") || base == "Jenkinsfile" || p == "azure-pipelines.yml" ||
        p == ".travis.yml" || p == "bitbucket-pipelines.yml" || under(p, ".buildkite") || p == ".drone.yml" ||
        p == "appveyor.yml" || p == ".appveyor.yml")
      out.push_back({"ci", p, "a CI service runs this on push"});
    if (p == ".pre-commit-config.yaml" || under(p, ".husky") || p == "lefthook.yml" || p == ".lefthook.yml")
      out.push_back({"automation", p, "commit tooling runs this on your machine when installed"});
    if (base == ".gitattributes") {
      const std::string& t = ch.gitattributes_text;
      bool driver = t.find("filter=") != std::string::npos || t.find("diff=") != std::string::npos ||
                    t.find("merge=") != std::string::npos;
      out.push_back({"git-attributes", p,
                     driver ? "names a filter, diff or merge driver: git runs it if your config defines one"
                            : "changes how git converts files (eol, ident)"});
    }
    if (base == ".gitmodules")
      out.push_back({"git-modules", p, "submodule URLs and update commands are fetched or run by git submodule"});
    if (base == ".envrc") out.push_back({"envrc", p, "direnv runs this when you cd into the folder"});
    if (p == ".vscode/tasks.json" || p == ".vscode/settings.json" || p == ".vscode/launch.json" ||
        p == ".idea/workspace.xml" || under(p, ".idea/runConfigurations"))
      out.push_back({"editor-tasks", p, "your editor may run commands from it when it opens the folder"});
    if (under(p, ".devcontainer") || p == ".devcontainer.json")
      out.push_back({"devcontainer", p, "dev container tools build and run this"});
    if (ch.new_mode == 0100755 && ch.old_mode != 0100755)
      out.push_back({"executable", p, ch.old_mode ? "made executable" : "a new executable file"});
    if (ch.new_mode == 0160000 && ch.old_mode != 0160000)
      out.push_back({"git-link", p, "a submodule commit: git submodule update fetches and checks it out"});
  }
  for (const auto& e : config) {
    std::string why = risky_config_key(e);
    if (!why.empty()) out.push_back({"git-config", e.key, why + ": " + e.value});
  }
  for (const auto& h : hooks)
    if (is_live_hook(h)) out.push_back({"git-hook", "hooks/" + h, "git runs this hook on the host"});
  std::sort(out.begin(), out.end(),
            [](const Warning& a, const Warning& b) { return std::tie(a.kind, a.path) < std::tie(b.kind, b.path); });
  return out;
}

}  // namespace avm::sessions
