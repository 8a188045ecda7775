#include "sessions/ids.h"

#include <sys/random.h>

#include <cerrno>

#include "util/error.h"
#include "util/strings.h"

namespace avm::sessions {

namespace {

bool id_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

}  // namespace

std::string generate_id() {
  // Straight from the kernel each time: no PRNG state that forked processes
  // would share and replay.
  std::uint32_t r[kIdLength];
  std::size_t got = 0;
  auto* p = reinterpret_cast<unsigned char*>(r);
  while (got < sizeof r) {
    ssize_t n = ::getrandom(p + got, sizeof r - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("getrandom");
    }
    got += static_cast<std::size_t>(n);
  }
  constexpr std::size_t letters = 23;  // kIdAlphabet starts with its 23 letters
  static_assert(kIdAlphabet[letters - 1] == 'z' && kIdAlphabet[letters] == '2');
  std::string id(kIdLength, 'x');
  id[0] = kIdAlphabet[r[0] % letters];
  for (std::size_t i = 1; i < kIdLength; ++i) id[i] = kIdAlphabet[r[i] % kIdAlphabet.size()];
  return id;
}

bool is_valid_id(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  if (s[0] == '-' || s[0] == '_') return false;
  for (char c : s)
    if (!id_char(c)) return false;
  return true;
}

void check_id(std::string_view s) {
  if (is_valid_id(s)) return;
  const std::string hint = "session ids are letters and digits, as `agent-list` shows them";
  if (s.empty()) throw Error("no session id given", hint);
  std::string q = shell_quote(s);
  if (s.find('/') != std::string_view::npos || s.find('\\') != std::string_view::npos)
    throw Error("session id " + q + " contains a path separator", hint);
  if (s.find("..") != std::string_view::npos || s[0] == '.')
    throw Error("session id " + q + " is a relative path, not an id", hint);
  if (s.size() > 64) throw Error("session id " + q.substr(0, 20) + "... is too long", hint);
  for (char c : s) {
    if (!id_char(c)) {
      std::string what = (c >= 'A' && c <= 'Z') ? "an upper-case letter"
                         : (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
                             ? "a control character"
                             : std::string("the character '") + c + "'";
      throw Error("session id " + q + " contains " + what, hint);
    }
  }
  throw Error("session id " + q + " cannot start with '" + std::string(1, s[0]) + "'", hint);
}

}  // namespace avm::sessions
