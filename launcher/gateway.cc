#include "launcher/gateway.h"

#include <fcntl.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cctype>
#include <ctime>

#include "util/error.h"
#include "util/fd.h"
#include "util/file.h"
#include "util/flock.h"

namespace avm::launcher {

namespace json = boost::json;
using namespace std::chrono;

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

// ---- The upstream URL rule ----

bool is_loopback_host(std::string_view host_in) {
  std::string host = lower(host_in);
  if (!host.empty() && host.back() == '.') host.pop_back();
  if (host == "localhost" || host == "::1") return true;
  // 127.0.0.0/8, dotted quad only.
  unsigned parts[4];
  int n = 0;
  std::size_t i = 0;
  while (n < 4) {
    if (i >= host.size() || !std::isdigit(static_cast<unsigned char>(host[i]))) return false;
    unsigned v = 0;
    std::size_t digits = 0;
    while (i < host.size() && std::isdigit(static_cast<unsigned char>(host[i]))) {
      v = v * 10 + static_cast<unsigned>(host[i++] - '0');
      if (++digits > 3) return false;
    }
    if (v > 255) return false;
    parts[n++] = v;
    if (n < 4) {
      if (i >= host.size() || host[i] != '.') return false;
      ++i;
    }
  }
  return i == host.size() && parts[0] == 127;
}

std::string Upstream::url() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  std::string out = std::string(tls ? "https://" : "http://") + h;
  if (port != (tls ? "443" : "80")) out += ":" + port;
  return out + base_path;
}

Upstream parse_upstream(std::string_view url) {
  const std::string shown(url);
  auto bad = [&](const std::string& why) {
    return Error("ANTHROPIC_BASE_URL '" + shown + "' is not usable: " + why,
                 "give https://HOST[:PORT][/PATH] (with or without a trailing /v1), e.g. "
                 "https://api.anthropic.com, or unset it for that default");
  };
  Upstream u;
  std::string_view rest = url;
  if (rest.substr(0, 8) == "https://") {
    rest.remove_prefix(8);
  } else if (rest.substr(0, 7) == "http://") {
    u.tls = false;
    rest.remove_prefix(7);
  } else {
    throw bad("it must start with https:// (or http:// on loopback)");
  }
  auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
  if (authority.find('@') != std::string_view::npos) throw bad("credentials do not belong in the URL");
  if (path.find_first_of("?#") != std::string_view::npos) throw bad("no query or fragment is allowed");
  for (char c : path)
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) throw bad("the path holds a space or control character");
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) throw bad("unclosed '[' in the host");
    u.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') throw bad("unexpected text after the host");
      port = after.substr(1);
      if (port.empty()) throw bad("empty port");
    }
  } else {
    auto colon = authority.find(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      if (port.empty()) throw bad("empty port");
    }
  }
  if (u.host.empty()) throw bad("no host");
  for (char c : u.host)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' || c == '_'))
      throw bad("the host holds '" + std::string(1, c) + "'");
  if (!port.empty()) {
    if (port.size() > 5) throw bad("bad port");
    unsigned v = 0;
    for (char c : port) {
      if (!std::isdigit(static_cast<unsigned char>(c))) throw bad("bad port");
      v = v * 10 + static_cast<unsigned>(c - '0');
    }
    if (v == 0 || v > 65535) throw bad("bad port");
    u.port = std::to_string(v);
  } else {
    u.port = u.tls ? "443" : "80";
  }
  if (!u.tls && !is_loopback_host(u.host))
    throw Error("ANTHROPIC_BASE_URL '" + shown + "' is plain http:// off this host",
                "the model's traffic carries the API key: use https://, or http:// only on loopback "
                "(127.0.0.1, ::1, localhost)");
  std::string p(path);
  while (!p.empty() && p.back() == '/') p.pop_back();
  if (ends_with(p, "/v1")) p.resize(p.size() - 3);
  while (!p.empty() && p.back() == '/') p.pop_back();
  u.base_path = p;
  return u;
}

// ---- Server-sent events ----

std::vector<SseEvent> SseParser::feed(std::string_view bytes) {
  std::vector<SseEvent> out;
  for (char c : bytes) {
    if (after_cr_) {
      after_cr_ = false;
      if (c == '\n') continue;  // the \n of a \r\n
    }
    if (c == '\r' || c == '\n') {
      after_cr_ = c == '\r';
      line_done(out);
      continue;
    }
    if (line_.size() >= kMaxLine) {
      overlong_ = true;
      continue;
    }
    line_ += c;
  }
  return out;
}

void SseParser::line_done(std::vector<SseEvent>& out) {
  if (overlong_) {
    overlong_ = false;
  } else if (line_.empty()) {
    if (has_data_) out.push_back(std::move(cur_));
    cur_ = SseEvent{};
    has_data_ = false;
  } else if (line_[0] != ':') {
    std::string_view line = line_;
    auto colon = line.find(':');
    std::string_view field = line.substr(0, colon);
    std::string_view value = colon == std::string_view::npos ? std::string_view{} : line.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
    if (field == "event") {
      cur_.event = std::string(value);
    } else if (field == "data") {
      if (has_data_) cur_.data += '\n';
      cur_.data += value;
      has_data_ = true;
    }
  }
  line_.clear();
}

// ---- Metering ----

namespace {

long long int_at(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end()) return 0;
  if (auto p = it->value().if_int64()) return *p;
  if (auto p = it->value().if_uint64()) return static_cast<long long>(*p);
  return 0;
}

const json::object* object_at(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  return it == o.end() ? nullptr : it->value().if_object();
}

std::optional<json::object> parse_object(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return std::move(v.as_object());
}

long long input_of(const json::object& usage) {
  return int_at(usage, "input_tokens") + int_at(usage, "cache_creation_input_tokens") +
         int_at(usage, "cache_read_input_tokens");
}

}  // namespace

void meter_event(const SseEvent& e, Tokens& t) {
  if (e.event != "message_start" && e.event != "message_delta" && !e.event.empty()) return;
  auto o = parse_object(e.data);
  if (!o) return;
  auto type = o->find("type");
  if (type == o->end() || !type->value().is_string()) return;
  std::string_view ty = type->value().get_string();
  if (ty == "message_start") {
    const json::object* msg = object_at(*o, "message");
    const json::object* usage = msg ? object_at(*msg, "usage") : nullptr;
    if (!usage) return;
    t.input += input_of(*usage);
    t.output += int_at(*usage, "output_tokens");
  } else if (ty == "message_delta") {
    const json::object* usage = object_at(*o, "usage");
    if (!usage) return;
    // Cumulative counts: the latest replaces what message_start said.
    if (usage->contains("output_tokens")) t.output = int_at(*usage, "output_tokens");
    long long in = input_of(*usage);
    if (in > t.input) t.input = in;
  }
}

Tokens usage_of_response(std::string_view body) {
  Tokens t;
  auto o = parse_object(body);
  if (!o) return t;
  const json::object* usage = object_at(*o, "usage");
  if (!usage) return t;
  t.input = input_of(*usage);
  t.output = int_at(*usage, "output_tokens");
  return t;
}

std::string model_of_request(std::string_view body) {
  auto o = parse_object(body);
  if (!o) return {};
  auto it = o->find("model");
  if (it == o->end() || !it->value().is_string()) return {};
  return std::string(it->value().get_string());
}

// ---- The budget ----

BudgetVerdict budget_decision(long long spent, std::optional<long long> max, std::string_view method,
                              std::string_view path, std::string_view id) {
  BudgetVerdict v;
  bool model_request = method == "POST" && path.find("/messages") != std::string_view::npos &&
                       path.find("/count_tokens") == std::string_view::npos;
  if (!max || !model_request || spent < *max) return v;
  v.allow = false;
  v.message = "session " + std::string(id) + " has spent its token budget (" + std::to_string(spent) + " of " +
              std::to_string(*max) + " tokens, input+output); raise it with 'agent-resume " + std::string(id) +
              " --max-tokens N'";
  return v;
}

std::string anthropic_error(std::string_view type, std::string_view message) {
  json::object err{{"type", type}, {"message", "agent-vm gateway: " + std::string(message)}};
  json::object o{{"type", "error"}, {"error", std::move(err)}};
  return json::serialize(o);
}

// ---- The host-only folder ----

std::string render_gateway_config(const GatewayConfig& c) {
  json::object o;
  o["session"] = c.session;
  o["upstream"] = c.upstream;
  if (c.max_tokens)
    o["max_tokens"] = *c.max_tokens;
  else
    o["max_tokens"] = nullptr;
  o["connect_timeout_ms"] = c.connect_timeout.count();
  o["read_timeout_ms"] = c.read_timeout.count();
  o["idle_timeout_ms"] = c.idle_timeout.count();
  return json::serialize(o) + "\n";
}

GatewayConfig parse_gateway_config(std::string_view text) {
  auto o = parse_object(text);
  if (!o) throw Error("gateway.json is not a JSON object", "respawn or resume the session to rewrite it");
  GatewayConfig c;
  if (auto it = o->find("session"); it != o->end() && it->value().is_string())
    c.session = std::string(it->value().get_string());
  if (auto it = o->find("upstream"); it != o->end() && it->value().is_string())
    c.upstream = std::string(it->value().get_string());
  if (auto it = o->find("max_tokens"); it != o->end() && !it->value().is_null()) {
    long long v = int_at(*o, "max_tokens");
    if (v <= 0) throw Error("gateway.json: max_tokens must be a positive integer", "resume with --max-tokens N");
    c.max_tokens = v;
  }
  auto ms = [&](std::string_view key, milliseconds& out) {
    if (o->contains(key)) {
      long long v = int_at(*o, key);
      if (v > 0) out = milliseconds(v);
    }
  };
  ms("connect_timeout_ms", c.connect_timeout);
  ms("read_timeout_ms", c.read_timeout);
  ms("idle_timeout_ms", c.idle_timeout);
  return c;
}

GatewayConfig load_gateway_config(const GatewayFiles& f) { return parse_gateway_config(read_file(f.config())); }

void save_gateway_config(const GatewayFiles& f, const GatewayConfig& c) {
  write_file_atomic(f.config(), render_gateway_config(c), 0600);
}

UsageTotals load_usage(const GatewayFiles& f) {
  UsageTotals u;
  auto text = read_file_if_exists(f.usage());
  if (!text) return u;
  auto o = parse_object(*text);
  if (!o) return u;
  u.tokens.input = int_at(*o, "input_tokens");
  u.tokens.output = int_at(*o, "output_tokens");
  u.requests = int_at(*o, "requests");
  return u;
}

void add_usage(const GatewayFiles& f, const Tokens& t) {
  FileLock lock = FileLock::acquire(f.usage_lock(), seconds(30));
  UsageTotals u = load_usage(f);
  u.tokens.input += t.input;
  u.tokens.output += t.output;
  u.requests += 1;
  json::object o{{"input_tokens", u.tokens.input}, {"output_tokens", u.tokens.output}, {"requests", u.requests}};
  write_file_atomic(f.usage(), json::serialize(o) + "\n", 0600);
}

std::string render_gateway_log_line(const GatewayLogEntry& e) {
  json::object o;
  o["time"] = e.time;
  o["method"] = e.method;
  o["path"] = e.path;
  o["model"] = e.model;
  o["status"] = e.status;
  o["input_tokens"] = e.tokens.input;
  o["output_tokens"] = e.tokens.output;
  o["duration_ms"] = e.duration_ms;
  if (!e.error.empty()) o["error"] = e.error;
  return json::serialize(o) + "\n";
}

void append_log_line(const std::filesystem::path& file, const std::string& line) {
  Fd fd(::open(file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) return;  // a log that cannot be written must not break the request
  ssize_t n = ::write(fd.get(), line.data(), line.size());
  (void)n;
}

}  // namespace avm::launcher
