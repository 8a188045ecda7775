#include "util/error.h"

#include <cerrno>
#include <cstring>

namespace avm {

void throw_errno(const std::string& context, int err) {
  if (err < 0) err = errno;
  throw Error(context + ": " + std::strerror(err));
}

}  // namespace avm
