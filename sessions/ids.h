// Session ids: short, typeable, and safe as a folder name. Any unique prefix
// of an id names the session (resolution lives in store.h).
#pragma once

#include <string>
#include <string_view>

namespace avm::sessions {

// Letters and digits that cannot be misread for one another: no 0/o, 1/l/i.
inline constexpr std::string_view kIdAlphabet = "abcdefghjkmnpqrstuvwxyz23456789";
inline constexpr std::size_t kIdLength = 6;

// A fresh random id: kIdLength characters of kIdAlphabet, starting with a
// letter (so it never reads as a number or an option). Uniqueness is the
// store's job.
std::string generate_id();

// True for a name that can be a session id: 1 to 64 characters of [a-z0-9_-],
// starting with a letter or digit. Everything a user types to name a session
// must pass this before it touches the filesystem: no '/', no '..', no dot
// names.
bool is_valid_id(std::string_view s);

// Throws avm::Error naming what is wrong with `s` (empty, a path separator,
// '..', an unexpected character) unless is_valid_id(s).
void check_id(std::string_view s);

}  // namespace avm::sessions
