// The egress proxy of restricted networking. QEMU's user network runs with
// restrict=on (the guest reaches nothing) plus one guestfwd: connections to
// 10.0.2.100:3128 are handed, one process per connection, to
// `agent-vm egress`, which reads an HTTP CONNECT request from the guest,
// allows it only to hosts the session names, and then relays bytes.
// Nothing on the host's loopback or link-local addresses is ever reachable.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

namespace avm::launcher {

// The address and port the guest uses as its HTTPS_PROXY.
inline constexpr const char* kEgressProxyAddr = "10.0.2.100";
inline constexpr std::uint16_t kEgressProxyPort = 3128;

// The hosts a session may reach by default: the model API.
const std::vector<std::string>& default_allowed_hosts();

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

// Serves one proxied connection on in_fd/out_fd (the guest side): reads the
// CONNECT request, answers 200/403/400/502, relays until both sides close.
// One line per connection goes to `log`. Returns 0 when the tunnel was
// opened, 1 when the request was refused.
int serve_egress(int in_fd, int out_fd, const EgressPolicy& policy, std::ostream& log);

}  // namespace avm::launcher
