// Errors that name the fix: what failed, why, and what to do.
#pragma once

#include <stdexcept>
#include <string>

namespace avm {

// The one exception type the product throws at users. `what()` says what
// failed and why; `hint()` (possibly empty) says what to do about it.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what, std::string hint = {})
      : std::runtime_error(what), hint_(std::move(hint)) {}
  const std::string& hint() const noexcept { return hint_; }

 private:
  std::string hint_;
};

// "<context>: <strerror(errno)>" as an Error; `err` defaults to errno.
[[noreturn]] void throw_errno(const std::string& context, int err = -1);

}  // namespace avm
