#include "launcher/gateway.h"

#include <catch2/catch.hpp>
#include <thread>

#include "util/error.h"
#include "util/file.h"
#include "util/temp_dir.h"

using namespace avm::launcher;

namespace {

// A streamed answer as the Messages API sends it (one text block, usage in
// message_start and message_delta), with a ping comment and CRLF lines mixed in.
const std::string kRecorded =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\","
    "\"model\":\"claude-sonnet-4-5\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":25,"
    "\"cache_creation_input_tokens\":100,\"cache_read_input_tokens\":7,\"output_tokens\":1}}}\n"
    "\n"
    ": keep-alive comment\n"
    "event: content_block_start\r\n"
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\r\n"
    "\r\n"
    "event: ping\n"
    "data: {\"type\": \"ping\"}\n"
    "\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n"
    "\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":0}\n"
    "\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":15}}\n"
    "\n"
    "event: message_stop\n"
    "data: {\"type\":\"message_stop\"}\n"
    "\n";

std::vector<SseEvent> parse_all(const std::vector<std::string_view>& pieces) {
  SseParser p;
  std::vector<SseEvent> out;
  for (auto piece : pieces)
    for (auto& e : p.feed(piece)) out.push_back(std::move(e));
  return out;
}

}  // namespace

TEST_CASE("the SSE parser reads a recorded stream whole", "[gateway]") {
  auto events = parse_all({kRecorded});
  REQUIRE(events.size() == 7);
  CHECK(events[0].event == "message_start");
  CHECK(events[1].event == "content_block_start");
  CHECK(events[2] == SseEvent{"ping", "{\"type\": \"ping\"}"});
  CHECK(events[5].event == "message_delta");
  CHECK(events[6] == SseEvent{"message_stop", "{\"type\":\"message_stop\"}"});
}

TEST_CASE("the SSE parser gives the same events however the bytes are split", "[gateway]") {
  auto whole = parse_all({kRecorded});
  // Split at every byte into two pieces, and into three around every byte.
  for (std::size_t i = 0; i <= kRecorded.size(); ++i) {
    std::string_view s = kRecorded;
    INFO("split at " << i);
    REQUIRE(parse_all({s.substr(0, i), s.substr(i)}) == whole);
    if (i + 1 <= kRecorded.size()) REQUIRE(parse_all({s.substr(0, i), s.substr(i, 1), s.substr(i + 1)}) == whole);
  }
  // One byte at a time.
  std::vector<std::string_view> bytes;
  for (std::size_t i = 0; i < kRecorded.size(); ++i) bytes.push_back(std::string_view(kRecorded).substr(i, 1));
  CHECK(parse_all(bytes) == whole);
}

TEST_CASE("the SSE parser merges streams fed back to back and handles SSE's corners", "[gateway]") {
  auto twice = parse_all({kRecorded + kRecorded});
  CHECK(twice.size() == 14);
  // Multi-line data, no space after the colon, CR-only line ends, a field-only line.
  auto e = parse_all({"data:a\rdata: b\r\rdata\n\nevent: x\n\n"});
  REQUIRE(e.size() == 2);
  CHECK(e[0] == SseEvent{"", "a\nb"});
  CHECK(e[1] == SseEvent{"", ""});  // "data" alone is an empty data line; "event: x" with no data is no event
  // An unterminated event is not emitted.
  CHECK(parse_all({"event: message_stop\ndata: {}\n"}).empty());
}

TEST_CASE("tokens are metered from message_start and message_delta", "[gateway]") {
  Tokens t;
  for (const auto& e : parse_all({kRecorded})) meter_event(e, t);
  CHECK(t.input == 25 + 100 + 7);
  CHECK(t.output == 15);
  CHECK(t.total() == 147);
  // Garbage events change nothing.
  Tokens g;
  meter_event({"message_start", "not json"}, g);
  meter_event({"message_delta", "{\"type\":\"message_delta\"}"}, g);
  meter_event({"error", "{\"type\":\"error\"}"}, g);
  CHECK(g.total() == 0);
}

TEST_CASE("a non-streamed answer's usage and a request's model are read", "[gateway]") {
  auto t = usage_of_response(R"({"id":"m","usage":{"input_tokens":10,"cache_read_input_tokens":5,"output_tokens":3}})");
  CHECK(t.input == 15);
  CHECK(t.output == 3);
  CHECK(usage_of_response("{}").total() == 0);
  CHECK(usage_of_response("nope").total() == 0);
  CHECK(model_of_request(R"({"model":"claude-x","stream":true})") == "claude-x");
  CHECK(model_of_request(R"({"stream":true})").empty());
  CHECK(model_of_request("").empty());
}

TEST_CASE("the budget refuses model requests once spent, and only those", "[gateway]") {
  CHECK(budget_decision(0, std::nullopt, "POST", "/v1/messages", "s1").allow);
  CHECK(budget_decision(1'000'000, std::nullopt, "POST", "/v1/messages", "s1").allow);
  CHECK(budget_decision(99, 100, "POST", "/v1/messages", "s1").allow);
  auto v = budget_decision(100, 100, "POST", "/v1/messages", "s1");
  CHECK_FALSE(v.allow);
  CHECK(v.message.find("agent-resume s1 --max-tokens N") != std::string::npos);
  CHECK_FALSE(budget_decision(150, 100, "POST", "/v1/messages", "s1").allow);
  CHECK(budget_decision(150, 100, "GET", "/v1/models", "s1").allow);
  CHECK(budget_decision(150, 100, "POST", "/v1/messages/count_tokens", "s1").allow);
  // Not retryable for an agent: 4xx other than 408, 409 and 429.
  CHECK(kBudgetRefusal.status == 400);
  CHECK(std::string(kBudgetRefusal.type) == "invalid_request_error");
}

TEST_CASE("errors are shaped as the Messages API shapes them", "[gateway]") {
  CHECK(anthropic_error("api_error", "x \"y\"") ==
        R"({"type":"error","error":{"type":"api_error","message":"agent-vm gateway: x \"y\""}})");
}

TEST_CASE("the upstream URL is taken with or without /v1", "[gateway]") {
  auto u = parse_upstream("https://api.anthropic.com");
  CHECK(u.tls);
  CHECK(u.host == "api.anthropic.com");
  CHECK(u.port == "443");
  CHECK(u.base_path.empty());
  CHECK(u.url() == "https://api.anthropic.com");
  for (const char* same : {"https://api.anthropic.com/", "https://api.anthropic.com/v1", "https://api.anthropic.com/v1/",
                           "https://api.anthropic.com:443/v1"}) {
    INFO(same);
    CHECK(parse_upstream(same).url() == "https://api.anthropic.com");
  }
  auto p = parse_upstream("https://proxy.example.com:8443/anthropic/v1");
  CHECK(p.port == "8443");
  CHECK(p.base_path == "/anthropic");
  CHECK(p.url() == "https://proxy.example.com:8443/anthropic");
  auto l = parse_upstream("http://127.0.0.1:8080/v1");
  CHECK_FALSE(l.tls);
  CHECK(l.port == "8080");
  CHECK(parse_upstream("http://localhost:1234").host == "localhost");
  CHECK(parse_upstream("http://[::1]:1234").host == "::1");
  CHECK(parse_upstream("http://127.9.8.7").port == "80");
  CHECK(parse_upstream("https://[2001:db8::1]:9/v1").url() == "https://[2001:db8::1]:9");
}

TEST_CASE("plain http off loopback and malformed URLs are refused", "[gateway]") {
  for (const char* bad : {"http://api.anthropic.com", "http://10.0.0.1:80", "http://128.0.0.1", "http://127.0.0.1.evil.com",
                          "http://localhost.evil.com", "ftp://x", "api.anthropic.com", "", "https://", "https://:443",
                          "https://h:0", "https://h:99999", "https://h:x", "https://u:p@h", "https://h/v1?x=1",
                          "https://h/a b", "https://[::1", "https://h:"}) {
    INFO(bad);
    CHECK_THROWS_AS(parse_upstream(bad), avm::Error);
  }
  CHECK(is_loopback_host("127.0.0.1"));
  CHECK(is_loopback_host("127.255.255.254"));
  CHECK(is_loopback_host("LOCALHOST"));
  CHECK(is_loopback_host("::1"));
  CHECK_FALSE(is_loopback_host("127.0.0"));
  CHECK_FALSE(is_loopback_host("1127.0.0.1"));
  CHECK_FALSE(is_loopback_host("10.0.2.2"));
}

TEST_CASE("gateway.json round-trips and usage adds up under the lock", "[gateway]") {
  avm::TempDir tmp("gateway-test");
  GatewayFiles f(tmp.path());
  GatewayConfig c;
  c.session = "s1";
  c.upstream = "https://h.example";
  c.max_tokens = 500;
  c.read_timeout = std::chrono::milliseconds(250);
  save_gateway_config(f, c);
  GatewayConfig back = load_gateway_config(f);
  CHECK(back.session == "s1");
  CHECK(back.upstream == "https://h.example");
  CHECK(back.max_tokens == 500);
  CHECK(back.read_timeout == std::chrono::milliseconds(250));
  CHECK(back.connect_timeout == GatewayConfig{}.connect_timeout);
  CHECK_THROWS_AS(parse_gateway_config("[]"), avm::Error);
  CHECK_FALSE(parse_gateway_config(R"({"max_tokens":null})").max_tokens);

  CHECK(load_usage(f).tokens.total() == 0);
  std::vector<std::thread> ts;
  for (int i = 0; i < 4; ++i)
    ts.emplace_back([&] {
      for (int j = 0; j < 10; ++j) add_usage(f, Tokens{3, 2});
    });
  for (auto& t : ts) t.join();
  auto u = load_usage(f);
  CHECK(u.tokens.input == 120);
  CHECK(u.tokens.output == 80);
  CHECK(u.requests == 40);
}

TEST_CASE("a gateway log line holds the request's facts and no content", "[gateway]") {
  GatewayLogEntry e;
  e.time = "2026-01-02T03:04:05.678Z";
  e.method = "POST";
  e.path = "/v1/messages";
  e.model = "claude-x";
  e.status = 200;
  e.tokens = {10, 5};
  e.duration_ms = 42;
  CHECK(render_gateway_log_line(e) ==
        R"({"time":"2026-01-02T03:04:05.678Z","method":"POST","path":"/v1/messages","model":"claude-x","status":200,)"
        R"("input_tokens":10,"output_tokens":5,"duration_ms":42})"
        "\n");
  e.error = "boom";
  CHECK(render_gateway_log_line(e).find(R"("error":"boom")") != std::string::npos);
}
