// The model gateway. The guest never holds the model API key: its agent talks
// plain HTTP to 10.0.2.100:80, which QEMU hands (a guestfwd, one process per
// connection) to `agent-vm gateway --dir <host-only folder>`. The gateway
// puts the session's real key on each request, forwards it to the upstream
// over TLS, streams the answer back as it arrives, counts the tokens it
// carries, and refuses requests once the session's budget is spent.
//
// This header holds the decisions (pure, I/O-free) and the files of the
// host-only folder; serve_gateway() is in gateway_server.cc.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace avm::launcher {

// Where the guest reaches the gateway, and the base URL its agent is given.
inline constexpr const char* kGatewayAddr = "10.0.2.100";
inline constexpr std::uint16_t kGatewayPort = 80;
inline constexpr const char* kGuestBaseUrl = "http://10.0.2.100/v1";
// The key the guest holds: worthless anywhere else.
inline constexpr const char* kGuestPlaceholderKey = "agent-vm-gateway-holds-the-real-key";
inline constexpr const char* kDefaultUpstream = "https://api.anthropic.com";

// ---- The upstream URL rule ----
// ANTHROPIC_BASE_URL is accepted with or without a trailing "/v1" (opencode's
// convention includes it, Anthropic's SDK's does not): "/v1" and any trailing
// '/' are dropped, and the guest's request path (/v1/messages) is appended to
// what is left. https:// anywhere; http:// only on loopback (127.0.0.0/8,
// ::1, localhost), for tests and local proxies.
struct Upstream {
  bool tls = true;
  std::string host;       // without brackets
  std::string port;       // "443" / "80" when not given
  std::string base_path;  // "" or "/prefix" (never ending in '/' or "/v1")
  std::string url() const;  // normalised, e.g. "https://api.anthropic.com"
};
// Throws avm::Error naming the fix for anything else.
Upstream parse_upstream(std::string_view url);
bool is_loopback_host(std::string_view host);

// ---- Server-sent events ----
struct SseEvent {
  std::string event;  // "" when the event had no `event:` field
  std::string data;   // data lines joined with '\n'
  bool operator==(const SseEvent&) const = default;
};

// Incremental SSE parser: bytes in, complete events out, in any split.
// Lines end in \n, \r\n or \r; a blank line ends an event; ':' lines are
// comments. Memory is bounded: a line over kMaxLine is dropped.
class SseParser {
 public:
  static constexpr std::size_t kMaxLine = 4 * 1024 * 1024;
  std::vector<SseEvent> feed(std::string_view bytes);

 private:
  void line_done(std::vector<SseEvent>& out);
  std::string line_;
  bool overlong_ = false;
  bool after_cr_ = false;
  SseEvent cur_;
  bool has_data_ = false;
};

// ---- Metering ----
struct Tokens {
  long long input = 0;   // input_tokens + cache_creation_input_tokens + cache_read_input_tokens
  long long output = 0;  // output_tokens
  long long total() const { return input + output; }
};
// Adds what one SSE event reports: message_start's message.usage (input and
// any output so far) and message_delta's usage.output_tokens (cumulative:
// the last one counts, so it replaces).
void meter_event(const SseEvent& e, Tokens& t);
// The `usage` of a non-streamed JSON response (zero when none).
Tokens usage_of_response(std::string_view json_body);
// The "model" of a request body; empty when none or not JSON.
std::string model_of_request(std::string_view json_body);

// ---- The budget ----
// The answer to a request past the budget: one place to change the status
// and error type the agent sees. 400 invalid_request_error, as Anthropic's
// own answer to an exhausted credit balance: agents show it at once, where a
// 429 or 5xx is retried with backoff (opencode: 5 retries, ~1.5 min) though
// no retry can pass before the budget is raised.
struct Refusal {
  unsigned status;
  const char* type;
};
inline constexpr Refusal kBudgetRefusal{400, "invalid_request_error"};

struct BudgetVerdict {
  bool allow = true;
  std::string message;  // why not, naming the fix
};
// Whether a request may go upstream: model requests (POST /v1/messages...)
// are refused once spent >= max; anything else (listing models) passes.
// `id` names the session in the fix.
BudgetVerdict budget_decision(long long spent, std::optional<long long> max, std::string_view method,
                              std::string_view path, std::string_view id);

// An Anthropic-shaped error body: {"type":"error","error":{"type":T,"message":"agent-vm gateway: M"}}.
std::string anthropic_error(std::string_view type, std::string_view message);

// ---- The host-only folder ----
// gateway.json: what the gateway of one session does. Written by spawn and
// resume; read by each gateway process.
struct GatewayConfig {
  std::string session;                 // the session id (for messages)
  std::string upstream = kDefaultUpstream;
  std::optional<long long> max_tokens;  // input+output; none: no budget
  std::chrono::milliseconds connect_timeout{15000};  // resolve, connect, TLS handshake
  std::chrono::milliseconds read_timeout{300000};    // each read from the upstream
  std::chrono::milliseconds idle_timeout{600000};    // the guest keeping a connection idle
};

struct GatewayFiles {
  explicit GatewayFiles(std::filesystem::path d) : dir(std::move(d)) {}
  std::filesystem::path dir;
  std::filesystem::path config() const { return dir / "gateway.json"; }
  std::filesystem::path key() const { return dir / "api-key"; }
  std::filesystem::path usage() const { return dir / "usage.json"; }
  std::filesystem::path usage_lock() const { return dir / "usage.lock"; }
  std::filesystem::path log() const { return dir / "gateway.log"; }
};

std::string render_gateway_config(const GatewayConfig& c);
GatewayConfig parse_gateway_config(std::string_view json);  // throws avm::Error
GatewayConfig load_gateway_config(const GatewayFiles& f);
void save_gateway_config(const GatewayFiles& f, const GatewayConfig& c);

struct UsageTotals {
  Tokens tokens;
  long long requests = 0;
};
// usage.json; zero when it does not exist yet.
UsageTotals load_usage(const GatewayFiles& f);
// Adds under usage.lock and replaces usage.json atomically.
void add_usage(const GatewayFiles& f, const Tokens& t);

// One line of gateway.log. Never content, never the key.
struct GatewayLogEntry {
  std::string time;  // ISO 8601 UTC with milliseconds
  std::string method, path, model;
  unsigned status = 0;
  Tokens tokens;
  long long duration_ms = 0;
  std::string error;  // empty when it worked
};
std::string render_gateway_log_line(const GatewayLogEntry& e);  // JSON, ending in '\n'
// Appends one line with a single write (O_APPEND).
void append_log_line(const std::filesystem::path& file, const std::string& line);

// Serves one guest connection on in_fd/out_fd (QEMU hands one socket as
// both): HTTP/1.1 requests in a loop until the guest closes, the idle
// deadline passes, or a request asks to close. Returns 0; never throws.
int serve_gateway(int in_fd, int out_fd, const std::filesystem::path& host_dir);

}  // namespace avm::launcher
