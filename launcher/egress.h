// The egress proxy of restricted networking. QEMU's user network runs with
// restrict=on (the guest reaches nothing) plus one guestfwd: connections to
// 10.0.2.100:3128 are handed, one process per connection, to
// `agent-vm egress`, which reads an HTTP CONNECT request from the guest,
// allows it only to hosts the session names, and then relays bytes.
// Nothing on the host's loopback or link-local addresses is ever reachable.
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

namespace avm::launcher {

// The address and port the guest uses as its HTTPS_PROXY.
inline constexpr const char* kEgressProxyAddr = "10.0.2.100";
inline constexpr std::uint16_t kEgressProxyPort = 3128;

struct EgressPolicy {
  // "host" (port 443), "host:port", "*.domain" (any subdomain, port 443).
  std::vector<std::string> allow;
};

// Whether a CONNECT to host:port is allowed by the policy. Host names compare
// case-insensitively; a trailing dot is ignored.
bool egress_allowed(const EgressPolicy& policy, std::string_view host, std::uint16_t port);

// Addresses never reached whatever the policy says: loopback, unspecified,
// link-local, multicast, and the user network's own 10.0.2.0/24. (A name on
// the allowlist that resolves to 127.0.0.1 must not open the host's loopback.)
bool egress_address_forbidden(std::string_view ip);

// Validates a --allow-host value; throws avm::Error naming the form expected.
std::string normalize_allow_entry(std::string_view entry);

// Every wait of the proxy has one.
struct EgressDeadlines {
  std::chrono::milliseconds request{30000};  // the guest sending its CONNECT request
  std::chrono::milliseconds connect{15000};  // resolving and connecting, each
  std::chrono::milliseconds idle{600000};    // a tunnel with no byte either way
};

// The host-only folder's egress.json: what the proxy of one session allows.
// Read per connection, so the command line holds only the folder.
struct EgressConfig {
  EgressPolicy policy;
  EgressDeadlines deadlines;
};
std::string render_egress_config(const EgressConfig& c);
EgressConfig parse_egress_config(std::string_view json);  // throws avm::Error
inline constexpr const char* kEgressConfigFile = "egress.json";
inline constexpr const char* kEgressLogFile = "egress.log";

// The audit record of one connection: one JSON line in egress.log.
struct EgressRecord {
  std::string time;     // when the guest connected (ISO 8601 UTC, ms)
  std::string target;   // the host:port asked for
  std::string address;  // the ip:port connected to; empty when none
  std::string verdict;  // "allowed", "denied" (policy) or "failed" (bad request, unreachable)
  std::string reason;
  unsigned long long bytes_up = 0;    // guest -> upstream
  unsigned long long bytes_down = 0;  // upstream -> guest
  long long duration_ms = 0;
};
std::string render_egress_log_line(const EgressRecord& r);  // JSON, ending in '\n'

// Serves one proxied connection on in_fd/out_fd (the guest side): reads the
// CONNECT request, answers 200/403/400/502/504, relays until both sides
// close or the tunnel idles past its deadline. One JSON line per connection
// goes to `log` when it ends. Returns 0 when the tunnel was opened, 1 when
// the request was refused.
int serve_egress(int in_fd, int out_fd, const EgressPolicy& policy, std::ostream& log,
                 const EgressDeadlines& deadlines = {});

}  // namespace avm::launcher
