#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace avm {

std::string trim(std::string_view s);
std::vector<std::string> split(std::string_view s, char sep);
// ASCII letters lowered, every other byte as it was (no locale).
std::string lower_ascii(std::string_view s);
// KEY=VALUE lines, split at the first '='. Empty lines, '#' comments and
// lines with no '=' are skipped. With `trim_space`, lines, keys and values
// lose surrounding whitespace (hand-edited files); without, they are kept
// byte for byte (values may hold anything but a line break).
std::vector<std::pair<std::string, std::string>> parse_key_values(std::string_view text,
                                                                  bool trim_space = false);
// Quotes for a POSIX shell (for messages and logs, never for exec).
std::string shell_quote(std::string_view s);
std::string shell_join(const std::vector<std::string>& argv);
// "3.2s", "45s", "12m", "3h", "2d".
std::string human_duration(std::chrono::seconds d);
std::string human_duration_ms(std::chrono::milliseconds d);
// "512M", "2G" -> MiB; throws avm::Error on garbage.
unsigned parse_mib(std::string_view s);
// Last `n` lines of `text`.
std::string tail_lines(std::string_view text, std::size_t n);

}  // namespace avm
