// meta.json: what a session is and what happened to it. It records intent
// and history; what is running is observed elsewhere (docs/design.md). The file is
// schema-versioned and replaced whole, never edited in place.
#pragma once

#include <sys/types.h>

#include <boost/json/fwd.hpp>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "launcher/vm_spec.h"
#include "util/error.h"

namespace avm::sessions {

// Bumped when a field changes meaning; readers refuse versions they do not know.
inline constexpr int kMetaSchema = 1;

// How a run of the VM ended.
enum class StopHow {
  GuestPoweroff,  // the guest powered off (ACPI button, or by itself)
  Quit,           // QMP `quit`
  Sigterm,        // QEMU killed with SIGTERM
  Sigkill,        // QEMU killed with SIGKILL
  Crash,          // QEMU died without being asked
  BootFailed,     // the guest never became ready
};
std::string_view to_string(StopHow how);
std::optional<StopHow> stop_how_from_string(std::string_view s);

// What the user last asked for. Observation decides what is shown.
enum class Intent {
  Creating,  // spawn has not finished
  Running,   // started and not asked to stop
  Stopped,   // stopped on request
  Failed,    // spawn or resume failed; `intent_reason` says why
};
std::string_view to_string(Intent intent);
std::optional<Intent> intent_from_string(std::string_view s);

// One start of the VM and, once it ended, how.
struct RunRecord {
  std::string started;                 // UTC ISO-8601
  std::optional<std::string> stopped;  // UTC ISO-8601; empty while running
  std::optional<StopHow> how;
  std::string detail;  // free text: "power button, 4.2s", "exit code 1"

  bool operator==(const RunRecord&) const = default;
};

struct Meta {
  int schema = kMetaSchema;
  std::string id;
  std::string repo_url;  // as cloned (local paths made absolute)
  std::string ref;       // what --ref asked for; empty: the remote's default
  std::string checked_out;  // branch name, or the tag/commit for a detached HEAD
  std::string commit;       // resolved full sha
  std::string created;      // UTC ISO-8601
  std::string image;        // guest image name
  std::string accelerator;  // "kvm", "tcg"
  unsigned cpus = launcher::kMinCpus;  // sizes a VM can have (launcher/vm_spec.h)
  unsigned memory_mib = launcher::kMinMemoryMib;
  std::uint16_t ssh_port = 0;  // 0: none allocated yet
  std::optional<pid_t> qemu_pid;
  // Field 22 of /proc/PID/stat when QEMU started: tells a recycled pid apart.
  std::optional<unsigned long long> qemu_start_time;
  // The id QEMU was started under (its -name agent-vm-<id>) when it is not
  // the session's: a warm-pool VM taken by agent-resume keeps its slot's.
  // Only with qemu_pid.
  std::optional<std::string> vm_id;
  std::optional<std::vector<std::string>> agent_command;  // argv override
  std::string net = "default";                            // network mode
  // Hosts the egress proxy lets the guest reach (restricted networking).
  std::vector<std::string> allow_hosts;
  Intent intent = Intent::Creating;
  std::string intent_reason;  // why, when Failed
  std::vector<RunRecord> history;

  bool operator==(const Meta&) const = default;
};

// meta.json is not valid JSON, lacks a field, or has one of the wrong type.
class MetaCorrupt : public Error {
 public:
  explicit MetaCorrupt(const std::string& reason);
  const std::string& reason() const noexcept { return reason_; }

 private:
  std::string reason_;
};

// meta.json carries a schema version this build does not know.
class MetaUnknownSchema : public Error {
 public:
  explicit MetaUnknownSchema(long long found);
  long long found() const noexcept { return found_; }

 private:
  long long found_;
};

// Parses meta.json text. Throws MetaCorrupt or MetaUnknownSchema, and only
// those, whatever the input.
Meta parse_meta(std::string_view text);
// Pretty JSON with a trailing newline.
std::string format_meta(const Meta& meta);

// Reads `path`; a missing or unreadable file is MetaCorrupt too.
Meta load_meta(const std::filesystem::path& path);

// Boost.JSON conversions (value_from / value_to).
void tag_invoke(const boost::json::value_from_tag&, boost::json::value& jv, const Meta& m);
Meta tag_invoke(const boost::json::value_to_tag<Meta>&, const boost::json::value& jv);
void tag_invoke(const boost::json::value_from_tag&, boost::json::value& jv, const RunRecord& r);
RunRecord tag_invoke(const boost::json::value_to_tag<RunRecord>&, const boost::json::value& jv);

}  // namespace avm::sessions
