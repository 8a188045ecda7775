// Cloning the session's repository (libgit2): http(s)://, git://, file://,
// plain local paths, ssh:// and scp-like user@host:path (keys from
// ssh-agent, host keys checked against known_hosts). On failure nothing is
// left at the destination.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

namespace avm {
class Progress;
}

struct git_credential;
struct git_cert;

namespace avm::sessions {

struct CloneProgress {
  enum class Phase { Receiving, Resolving, CheckingOut } phase = Phase::Receiving;
  unsigned received_objects = 0;
  unsigned indexed_objects = 0;
  unsigned total_objects = 0;
  unsigned indexed_deltas = 0;
  unsigned total_deltas = 0;
  std::size_t received_bytes = 0;
  std::size_t checkout_done = 0;
  std::size_t checkout_total = 0;
};
using CloneProgressFn = std::function<void(const CloneProgress&)>;

// One line for a progress display: "412/2800 objects, 1.2 MiB",
// "resolving deltas 40/95", "checking out 120/300 files".
std::string describe(const CloneProgress& p);

struct CloneOptions {
  // Branch, tag, or commit sha (full or abbreviated). Empty: the remote's
  // default branch (its HEAD), else "main" when the remote has no HEAD.
  std::string ref;
  CloneProgressFn progress;
  // Set to true (e.g. from a SIGINT handler) to abandon the clone.
  const std::atomic<bool>* cancel = nullptr;
};

struct CloneResult {
  std::string url;          // the URL cloned, local paths made absolute, passwords removed
  std::string commit;       // full sha of what is checked out
  std::string checked_out;  // the branch name, or the tag or commit asked for
  bool detached = false;    // true for a tag or a commit
  enum class RefKind { Branch, Tag, Commit } kind = RefKind::Branch;
};

// How a repository argument is read.
enum class UrlKind { Http, Git, Ssh, File, LocalPath };
struct ParsedUrl {
  UrlKind kind = UrlKind::LocalPath;
  std::string host;        // empty for file:// and local paths
  std::uint16_t port = 0;  // the scheme's default when not given
  std::string user;        // from the URL, if any
  std::string path;
};
// Throws avm::Error ("invalid repository URL ...") for an empty argument, an
// unsupported scheme or a URL without a host.
ParsedUrl parse_repo_url(std::string_view url);
// The URL with any password ("https://user:secret@host") removed.
std::string redact_url(std::string_view url);

// Clones `url` into `dest` (which must not exist yet) and checks out
// `opts.ref`. Throws avm::Error with a hint for an unknown ref (listing some
// branches that exist), an unreachable host (naming host and port), failed
// authentication, an unknown SSH host key, a missing repository or an
// invalid URL. On any failure `dest` is removed.
CloneResult clone_repo(std::string_view url, const std::filesystem::path& dest,
                       const CloneOptions& opts = {});
inline CloneResult clone_repo(std::string_view url, std::string_view ref,
                              const std::filesystem::path& dest, CloneProgressFn progress = {}) {
  CloneOptions o;
  o.ref = std::string(ref);
  o.progress = std::move(progress);
  return clone_repo(url, dest, o);
}

// Clone's rules for any other transfer (push): keys from ssh-agent, URL
// user names, SSH host keys checked against known_hosts. Give libgit2's
// git_remote_callbacks remote_credentials and remote_certificate with a
// RemoteAuth* as payload; afterwards its fields say why a transfer failed.
struct RemoteAuth {
  ParsedUrl url;
  // Credentials from an http(s) URL, given to the server when it asks.
  std::string url_user, url_password;
  int password_tries = 0;
  int agent_tries = 0;
  std::string auth_problem;   // why authentication cannot work
  std::string hostkey_error;  // set by the certificate check when it refuses
  std::string hostkey_hint;
};
int remote_credentials(git_credential** out, const char* url, const char* user_from_url, unsigned int allowed,
                       void* payload);
int remote_certificate(git_cert* cert, int valid, const char* host, void* payload);

}  // namespace avm::sessions
