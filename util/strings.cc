#include "util/strings.h"

#include <cctype>
#include <cstdio>

#include "util/error.h"

namespace avm {

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t p = s.find(sep, start);
    out.emplace_back(s.substr(start, p == std::string_view::npos ? s.npos : p - start));
    if (p == std::string_view::npos) break;
    start = p + 1;
  }
  return out;
}

std::string lower_ascii(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::vector<std::pair<std::string, std::string>> parse_key_values(std::string_view text, bool trim_space) {
  std::vector<std::pair<std::string, std::string>> out;
  for (auto line : split(text, '\n')) {
    if (trim_space) line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string k = line.substr(0, eq), v = line.substr(eq + 1);
    if (trim_space) {
      k = trim(k);
      v = trim(v);
    }
    out.emplace_back(std::move(k), std::move(v));
  }
  return out;
}

std::string shell_quote(std::string_view s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789@%_-+=:,./") == std::string_view::npos)
    return std::string(s);
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

std::string shell_join(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out += ' ';
    out += shell_quote(a);
  }
  return out;
}

std::string human_duration(std::chrono::seconds d) {
  long long s = d.count();
  if (s < 0) s = 0;
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) return std::to_string(s / 60) + "m";
  if (s < 86400) return std::to_string(s / 3600) + "h";
  return std::to_string(s / 86400) + "d";
}

std::string human_duration_ms(std::chrono::milliseconds d) {
  char buf[32];
  double s = static_cast<double>(d.count()) / 1000.0;
  if (s < 60)
    std::snprintf(buf, sizeof buf, "%.1fs", s);
  else
    std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  return buf;
}

unsigned parse_mib(std::string_view in) {
  std::string s = trim(in);
  if (s.empty()) throw Error("empty size", "give a size such as 512M or 2G");
  size_t i = 0;
  unsigned long long n = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
    n = n * 10 + static_cast<unsigned>(s[i] - '0');
    if (n > (1ull << 32)) throw Error("size '" + s + "' is too large", "give a size such as 512M or 2G");
    ++i;
  }
  if (i == 0) throw Error("size '" + s + "' is not a number", "give a size such as 512M or 2G");
  std::string unit = s.substr(i);
  for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (unit.empty() || unit == "M" || unit == "MB" || unit == "MIB") {
  } else if (unit == "G" || unit == "GB" || unit == "GIB") {
    n *= 1024;
  } else {
    throw Error("size '" + s + "' has an unknown unit '" + unit + "'", "use M or G, e.g. 512M or 2G");
  }
  if (n == 0 || n > (1u << 22))
    throw Error("size '" + s + "' is out of range", "give a size from 1M to 4096G, such as 512M or 2G");
  return static_cast<unsigned>(n);
}

std::string tail_lines(std::string_view text, std::size_t n) {
  if (n == 0) return {};
  size_t end = text.size();
  if (end && text[end - 1] == '\n') --end;
  size_t pos = end;
  size_t lines = 0;
  while (pos > 0) {
    if (text[pos - 1] == '\n' && ++lines == n) break;
    --pos;
  }
  return std::string(text.substr(pos));
}

}  // namespace avm
