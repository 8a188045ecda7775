#include "launcher/egress.h"

#include <ifaddrs.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <sstream>
#include <thread>

#include "util/error.h"
#include "util/fd.h"

using namespace avm::launcher;

TEST_CASE("the allowlist matches hosts, ports and subdomains", "[egress]") {
  EgressPolicy p{{"api.anthropic.com", "registry.npmjs.org:8443", "*.example.org"}};
  CHECK(egress_allowed(p, "api.anthropic.com", 443));
  CHECK(egress_allowed(p, "API.Anthropic.COM.", 443));
  CHECK_FALSE(egress_allowed(p, "api.anthropic.com", 80));
  CHECK_FALSE(egress_allowed(p, "evil-api.anthropic.com", 443));
  CHECK_FALSE(egress_allowed(p, "anthropic.com", 443));
  CHECK(egress_allowed(p, "registry.npmjs.org", 8443));
  CHECK_FALSE(egress_allowed(p, "registry.npmjs.org", 443));
  CHECK(egress_allowed(p, "a.b.example.org", 443));
  CHECK_FALSE(egress_allowed(p, "example.org", 443));
  CHECK_FALSE(egress_allowed(p, "example.org.evil.com", 443));
  CHECK_FALSE(egress_allowed(EgressPolicy{}, "api.anthropic.com", 443));
}

TEST_CASE("local addresses are never reachable", "[egress]") {
  for (const char* ip : {"127.0.0.1", "127.1.2.3", "::1", "0.0.0.0", "::", "169.254.169.254",
                         "fe80::1", "224.0.0.1", "10.0.2.2", "10.0.2.100", "::ffff:127.0.0.1",
                         "not-an-ip"}) {
    INFO(ip);
    CHECK(egress_address_forbidden(ip));
  }
  for (const char* ip : {"104.18.2.3", "10.1.2.3", "192.168.1.10", "2606:4700::1"}) {
    INFO(ip);
    CHECK_FALSE(egress_address_forbidden(ip));
  }
}

TEST_CASE("allow entries are validated and normalised", "[egress]") {
  CHECK(normalize_allow_entry("Registry.NPMJS.org") == "registry.npmjs.org");
  CHECK(normalize_allow_entry("example.com:443") == "example.com");
  CHECK(normalize_allow_entry("example.com:8080") == "example.com:8080");
  CHECK(normalize_allow_entry("*.example.com") == "*.example.com");
  CHECK(normalize_allow_entry("Example.COM.:8443") == "example.com:8443");
  for (const char* bad : {"", "a b", "x:0", "x:99999", "http://x", "*", "a.*.com", "x:"}) {
    INFO(bad);
    CHECK_THROWS_AS(normalize_allow_entry(bad), avm::Error);
  }
}

TEST_CASE("allow entries with an empty label are refused, so every normalised entry is valid", "[egress]") {
  // Found by tests/fuzz (egress_allow): "." was accepted and normalised to
  // "", which normalize_allow_entry refuses; "*." (normalised to "*") too.
  for (const char* bad : {".", "*.", "..", "a..b", ".a", "a.b..", "*..a", "*.:8443", "**.a", "a.*", "[.]"}) {
    INFO(bad);
    CHECK_THROWS_AS(normalize_allow_entry(bad), avm::Error);
  }
  CHECK_THROWS_AS(normalize_allow_entry(std::string(64, 'a') + ".com"), avm::Error);
  CHECK(normalize_allow_entry(std::string(63, 'a') + ".com") == std::string(63, 'a') + ".com");
  for (const char* good : {"a.", "A.B.:80", "*.x", "[Host.Example]:8080", "x-y.z"}) {
    INFO(good);
    std::string once = normalize_allow_entry(good);
    CHECK(normalize_allow_entry(once) == once);
  }
}

namespace {

// Runs serve_egress on one end of a socketpair (as QEMU's guestfwd does),
// sends `request` from the other, and returns what the guest side reads back.
struct Exchange {
  int rc;
  std::string reply;
  std::string log;
};
Exchange exchange(const EgressPolicy& policy, const std::string& request, bool half_close = true,
                  const EgressDeadlines& deadlines = {}) {
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  avm::Fd guest(sv[0]), proxy(sv[1]);
  std::ostringstream log;
  int rc = -1;
  std::thread t([&] { rc = serve_egress(proxy.get(), proxy.get(), policy, log, deadlines); proxy.reset(); });
  REQUIRE(::write(guest.get(), request.data(), request.size()) == static_cast<ssize_t>(request.size()));
  if (half_close) ::shutdown(guest.get(), SHUT_WR);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(guest.get(), buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  t.join();
  return {rc, out, log.str()};
}

// A non-loopback address of this host, where a test upstream can listen.
std::string host_address() {
  ifaddrs* ifs = nullptr;
  REQUIRE(::getifaddrs(&ifs) == 0);
  std::string found;
  for (ifaddrs* i = ifs; i; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
    char b[INET_ADDRSTRLEN];
    ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, b, sizeof b);
    if (!egress_address_forbidden(b)) {
      found = b;
      break;
    }
  }
  ::freeifaddrs(ifs);
  return found;
}

}  // namespace

TEST_CASE("a CONNECT outside the allowlist is refused with 403 and the fix", "[egress]") {
  auto r = exchange({{"api.anthropic.com"}}, "CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(r.rc == 1);
  CHECK(r.reply.rfind("HTTP/1.1 403", 0) == 0);
  CHECK(r.reply.find("--allow-host") != std::string::npos);
  CHECK(r.log.find(R"("target":"127.0.0.1:22","address":"","verdict":"denied","reason":"not on the allowlist)") !=
        std::string::npos);
}

TEST_CASE("an allowed name that resolves to loopback is still refused", "[egress]") {
  auto r = exchange({{"localhost:8080"}}, "CONNECT localhost:8080 HTTP/1.1\r\n\r\n");
  CHECK(r.rc == 1);
  CHECK(r.reply.rfind("HTTP/1.1 403", 0) == 0);
  CHECK(r.log.find("local address") != std::string::npos);
}

TEST_CASE("plain HTTP and garbage are refused", "[egress]") {
  auto r = exchange({{"example.com:80"}}, "GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n");
  CHECK(r.rc == 1);
  CHECK(r.reply.rfind("HTTP/1.1 405", 0) == 0);
  auto g = exchange({{"example.com"}}, std::string("\x16\x03\x01\x02\x00garbage\r\n\r\n", 16));
  CHECK(g.rc == 1);
  CHECK(g.reply.rfind("HTTP/1.1 400", 0) == 0);
}

TEST_CASE("an allowed CONNECT is tunnelled both ways", "[egress]") {
  std::string addr = host_address();
  REQUIRE_FALSE(addr.empty());  // the test needs a non-loopback interface
  avm::Fd srv(::socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  ::inet_pton(AF_INET, addr.c_str(), &a.sin_addr);
  REQUIRE(::bind(srv.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(srv.get(), 1) == 0);
  socklen_t len = sizeof a;
  ::getsockname(srv.get(), reinterpret_cast<sockaddr*>(&a), &len);
  std::string target = addr + ":" + std::to_string(ntohs(a.sin_port));
  // Upstream: echoes what it gets, upper-cased, then closes.
  std::thread upstream([&] {
    avm::Fd c(::accept(srv.get(), nullptr, nullptr));
    std::string got;
    char buf[256];
    ssize_t n;
    while ((n = ::read(c.get(), buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(n));
    for (auto& ch : got) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    REQUIRE(::write(c.get(), got.data(), got.size()) == static_cast<ssize_t>(got.size()));
  });
  auto r = exchange({{target}}, "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n\r\nhello");
  upstream.join();
  CHECK(r.rc == 0);
  CHECK(r.reply == "HTTP/1.1 200 Connection established\r\n\r\nHELLO");
  INFO(r.log);
  CHECK(r.log.find(R"("target":")" + target + R"(","address":")" + target + R"(","verdict":"allowed")") !=
        std::string::npos);
  CHECK(r.log.find(R"("bytes_up":5,"bytes_down":5,)") != std::string::npos);
  CHECK(std::count(r.log.begin(), r.log.end(), '\n') == 1);
}

TEST_CASE("a tunnel where nothing moves ends at the idle deadline, and says so", "[egress]") {
  std::string addr = host_address();
  REQUIRE_FALSE(addr.empty());
  avm::Fd srv(::socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  ::inet_pton(AF_INET, addr.c_str(), &a.sin_addr);
  REQUIRE(::bind(srv.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(srv.get(), 1) == 0);
  socklen_t len = sizeof a;
  ::getsockname(srv.get(), reinterpret_cast<sockaddr*>(&a), &len);
  std::string target = addr + ":" + std::to_string(ntohs(a.sin_port));
  // The upstream accepts and then says nothing; the guest keeps its side open.
  EgressDeadlines d;
  d.idle = std::chrono::milliseconds(200);
  auto r = exchange({{target}}, "CONNECT " + target + " HTTP/1.1\r\n\r\n", /*half_close=*/false, d);
  CHECK(r.rc == 0);
  CHECK(r.reply == "HTTP/1.1 200 Connection established\r\n\r\n");
  CHECK(r.log.find("ended: idle for") != std::string::npos);
}

TEST_CASE("a request that never comes ends at the request deadline", "[egress]") {
  EgressDeadlines d;
  d.request = std::chrono::milliseconds(100);
  auto r = exchange({{"example.com"}}, "CONNECT exa", /*half_close=*/false, d);
  CHECK(r.rc == 1);
  CHECK(r.reply.rfind("HTTP/1.1 400", 0) == 0);
  CHECK(r.log.find(R"("verdict":"failed","reason":"no request within the deadline")") != std::string::npos);
}

TEST_CASE("egress.json round-trips the allowlist and deadlines", "[egress]") {
  EgressConfig c;
  c.policy.allow = {"models.opencode.ai", "registry.npmjs.org:8443"};
  c.deadlines.idle = std::chrono::milliseconds(1234);
  auto back = parse_egress_config(render_egress_config(c));
  CHECK(back.policy.allow == c.policy.allow);
  CHECK(back.deadlines.idle == std::chrono::milliseconds(1234));
  CHECK(back.deadlines.connect == EgressDeadlines{}.connect);
  CHECK_THROWS_AS(parse_egress_config("nope"), avm::Error);
}

TEST_CASE("an egress log line is one JSON object with every field", "[egress]") {
  EgressRecord r{"2026-01-02T03:04:05.678Z", "h:443", "1.2.3.4:443", "allowed", "on the allowlist", 10, 20, 30};
  CHECK(render_egress_log_line(r) ==
        R"({"time":"2026-01-02T03:04:05.678Z","target":"h:443","address":"1.2.3.4:443","verdict":"allowed",)"
        R"("reason":"on the allowlist","bytes_up":10,"bytes_down":20,"duration_ms":30})"
        "\n");
}
