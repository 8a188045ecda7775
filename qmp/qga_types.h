// Typed guest agent (QGA) commands: structs in, structs out (Boost.JSON).
#pragma once

#include <boost/json/value.hpp>
#include <boost/json/value_from.hpp>
#include <boost/json/value_to.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace avm::qmp {

// guest-info
struct GuestCommandInfo {
  std::string name;
  bool enabled = false;
  bool success_response = true;  // false: the command does not reply on success
};
struct GuestInfo {
  std::string version;  // the agent's ("7.2.22")
  std::vector<GuestCommandInfo> supported_commands;
  // Whether `command` is listed and enabled.
  bool supports(std::string_view command) const;
};
GuestInfo tag_invoke(boost::json::value_to_tag<GuestInfo>, const boost::json::value& v);

// guest-get-osinfo: every field optional (the agent fills what it knows).
struct OsInfo {
  std::optional<std::string> id, name, pretty_name, version, version_id, variant, variant_id;
  std::optional<std::string> kernel_release, kernel_version, machine;
};
OsInfo tag_invoke(boost::json::value_to_tag<OsInfo>, const boost::json::value& v);

// guest-exec
struct GuestExecArgs {
  std::string path;               // argv[0], looked up in the guest's PATH
  std::vector<std::string> args;  // argv[1..]
  std::vector<std::string> env;   // "K=V"
  std::optional<std::string> input;  // raw bytes for stdin (sent base64)
  bool capture_output = true;
};
void tag_invoke(boost::json::value_from_tag, boost::json::value& v, const GuestExecArgs& a);

// guest-exec-status
struct ExecStatus {
  bool exited = false;
  std::optional<int> exit_code;  // when it exited normally
  std::optional<int> signal;     // when a signal killed it: 1..127
  std::string out, err;          // decoded
  bool out_truncated = false, err_truncated = false;
};
ExecStatus tag_invoke(boost::json::value_to_tag<ExecStatus>, const boost::json::value& v);

struct ExecResult {
  int exit_code = -1;  // 128+N when killed by signal N
  std::optional<int> signal;
  std::string out, err;
  bool out_truncated = false, err_truncated = false;
};

// The result of a process guest-exec-status reports as exited: its exit
// code, 128+N when signal N killed it (as a shell reports it), -1 when the
// agent says neither.
ExecResult exec_result(ExecStatus status);

}  // namespace avm::qmp
