#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace avm {

std::string trim(std::string_view s);
std::vector<std::string> split(std::string_view s, char sep);
bool starts_with(std::string_view s, std::string_view prefix);
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
