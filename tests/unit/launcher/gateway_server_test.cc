// serve_gateway() in-process on a socketpair (as QEMU's guestfwd hands it a
// connection), against a fake upstream on 127.0.0.1 speaking TLS with a
// certificate from a CA made for this test run.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

#include "launcher/gateway.h"
#include "util/fd.h"
#include "util/file.h"
#include "util/temp_dir.h"

using namespace avm::launcher;
namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

constexpr const char* kRealKey = "sk-ant-real-key-for-gateway-test-0123456789";

// A CA, a server certificate it signed (localhost, 127.0.0.1), and a
// self-signed one nobody trusts. Made once per run with the openssl CLI.
struct TestPki {
  avm::TempDir dir{"gateway-pki"};
  std::filesystem::path ca, cert, key, rogue_cert, rogue_key;
  TestPki() {
    auto p = [&](const char* n) { return (dir.path() / n).string(); };
    ca = p("ca.pem");
    cert = p("srv.pem");
    key = p("srv.key");
    rogue_cert = p("rogue.pem");
    rogue_key = p("rogue.key");
    avm::write_file_atomic(p("ext.cnf"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
    std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    std::string cmds =
        "cd '" + dir.path().string() + "' && (" +
        "openssl req -x509" + ec + " -keyout ca.key -out ca.pem -subj /CN=gateway-test-ca -days 2 && " +
        "openssl req" + ec + " -keyout srv.key -out srv.csr -subj /CN=localhost && " +
        "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 "
        "-extfile ext.cnf && " +
        "openssl req -x509" + ec + " -keyout rogue.key -out rogue.pem -subj /CN=localhost -days 2 "
        "-addext subjectAltName=DNS:localhost,IP:127.0.0.1";
    cmds += ") >/dev/null 2>&1";
    REQUIRE(std::system(cmds.c_str()) == 0);
    // The gateway verifies against the default store, which SSL_CERT_FILE replaces.
    ::setenv("SSL_CERT_FILE", ca.c_str(), 1);
  }
};
TestPki& pki() {
  static TestPki p;
  return p;
}

// A request as the upstream received it.
struct Received {
  std::string head, body;
};

// The fake model API. `respond` gets the request and a way to send bytes;
// it runs on the upstream's own thread, one connection at a time.
class FakeUpstream {
 public:
  using Send = std::function<bool(std::string_view)>;
  using Respond = std::function<void(const Received&, const Send&)>;

  FakeUpstream(bool tls, Respond respond, bool rogue = false) : tls_(tls), respond_(std::move(respond)) {
    if (tls) {
      ctx_.use_certificate_chain_file(rogue ? pki().rogue_cert : pki().cert);
      ctx_.use_private_key_file(rogue ? pki().rogue_key : pki().key, ssl::context::pem);
    }
    acceptor_.open(tcp::v4());
    acceptor_.bind({asio::ip::make_address("127.0.0.1"), 0});
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { loop(); });
  }
  ~FakeUpstream() {
    done_ = true;
    release();
    boost::system::error_code ignore;
    // Wake the accept with a connection of our own.
    tcp::socket s(ioc_);
    s.connect({asio::ip::make_address("127.0.0.1"), port_}, ignore);
    thread_.join();
  }
  std::string url() const { return std::string(tls_ ? "https" : "http") + "://localhost:" + std::to_string(port_); }
  int connections() const { return connections_; }
  std::vector<Received> requests() {
    std::lock_guard l(mu_);
    return requests_;
  }
  // Waits (bounded) until the test releases the upstream or it goes.
  void wait_release() { release_future_.wait_for(20s); }
  void release() {
    if (!released_.exchange(true)) release_.set_value();
  }

 private:
  template <class S>
  void serve(S& s) {
    std::string in;
    char buf[4096];
    boost::system::error_code ec;
    std::size_t end;
    while ((end = in.find("\r\n\r\n")) == std::string::npos) {
      std::size_t n = s.read_some(asio::buffer(buf), ec);
      if (ec) return;
      in.append(buf, n);
    }
    Received r{in.substr(0, end + 4), in.substr(end + 4)};
    std::size_t len = 0;
    auto cl = r.head.find("Content-Length: ");
    if (cl == std::string::npos) cl = r.head.find("content-length: ");
    if (cl != std::string::npos) len = std::stoul(r.head.substr(cl + 16));
    while (r.body.size() < len) {
      std::size_t n = s.read_some(asio::buffer(buf), ec);
      if (ec) return;
      r.body.append(buf, n);
    }
    {
      std::lock_guard l(mu_);
      requests_.push_back(r);
    }
    respond_(r, [&](std::string_view bytes) {
      boost::system::error_code wec;
      asio::write(s, asio::buffer(bytes.data(), bytes.size()), wec);
      return !wec;
    });
  }
  void loop() {
    for (;;) {
      tcp::socket sock(ioc_);
      boost::system::error_code ec;
      acceptor_.accept(sock, ec);
      if (ec || done_) return;
      ++connections_;
      if (tls_) {
        ssl::stream<tcp::socket> s(std::move(sock), ctx_);
        s.handshake(ssl::stream_base::server, ec);
        if (!ec) serve(s);
        s.lowest_layer().close(ec);
      } else {
        serve(sock);
      }
    }
  }

  bool tls_;
  Respond respond_;
  asio::io_context ioc_;
  ssl::context ctx_{ssl::context::tls_server};
  tcp::acceptor acceptor_{ioc_};
  unsigned short port_ = 0;
  std::thread thread_;
  std::atomic<bool> done_{false};
  std::atomic<bool> released_{false};
  std::atomic<int> connections_{0};
  std::promise<void> release_;
  std::shared_future<void> release_future_{release_.get_future().share()};
  std::mutex mu_;
  std::vector<Received> requests_;
};

std::string chunk(std::string_view s) {
  char head[16];
  std::snprintf(head, sizeof head, "%zx\r\n", s.size());
  return head + std::string(s) + "\r\n";
}

const std::string kStart =
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m1\",\"usage\":"
    "{\"input_tokens\":30,\"cache_read_input_tokens\":10,\"output_tokens\":1}}}\n\n";
const std::string kRest =
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
    "\"text_delta\",\"text\":\"hello\"}}\n\n"
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},"
    "\"usage\":{\"output_tokens\":12}}\n\n"
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

std::string messages_request(const std::string& extra_headers = "", bool close = false) {
  std::string body = R"({"model":"claude-test-1","stream":true,"messages":[{"role":"user","content":"secret prompt"}]})";
  return "POST /v1/messages HTTP/1.1\r\nHost: 10.0.2.100\r\nContent-Type: application/json\r\n"
         "x-api-key: guest-placeholder\r\nAuthorization: Bearer guest-token\r\nanthropic-version: 2023-06-01\r\n" +
         extra_headers + (close ? "Connection: close\r\n" : "") +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

// The guest's end of a connection, with the gateway serving the other end.
class Guest {
 public:
  explicit Guest(const std::filesystem::path& dir) {
    int sv[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    fd_.reset(sv[0]);
    gw_.reset(sv[1]);
    thread_ = std::thread([this, dir] { serve_gateway(gw_.get(), gw_.get(), dir); });
  }
  ~Guest() { finish(); }
  void send(std::string_view s) { REQUIRE(::write(fd_.get(), s.data(), s.size()) == static_cast<ssize_t>(s.size())); }
  // Reads until `marker` shows in what was read (or the gateway closes);
  // bounded so a broken gateway fails the test instead of hanging it.
  bool read_until(std::string_view marker) {
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (got.find(marker) == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd_.get(), POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
      char buf[4096];
      ssize_t n = ::read(fd_.get(), buf, sizeof buf);
      if (n <= 0) return got.find(marker) != std::string::npos;
      got.append(buf, static_cast<std::size_t>(n));
    }
    return true;
  }
  bool read_to_end() {
    read_until(std::string(1, '\0'));  // never appears: reads until the gateway closes
    pollfd p{fd_.get(), POLLIN, 0};
    return ::poll(&p, 1, 0) == 1;
  }
  void finish() {
    if (thread_.joinable()) {
      ::shutdown(fd_.get(), SHUT_WR);
      thread_.join();
      gw_.reset();
    }
  }
  std::string got;

 private:
  avm::Fd fd_, gw_;
  std::thread thread_;
};

struct Session {
  avm::TempDir dir{"gateway-session"};
  GatewayFiles files{dir.path()};
  explicit Session(const std::string& upstream, std::optional<long long> max = std::nullopt,
                   std::chrono::milliseconds read_timeout = 20s) {
    GatewayConfig c;
    c.session = "gwtest";
    c.upstream = upstream;
    c.max_tokens = max;
    c.read_timeout = read_timeout;
    c.connect_timeout = 10s;
    save_gateway_config(files, c);
    avm::write_file_atomic(files.key(), std::string(kRealKey) + "\n", 0600);
  }
  std::string log() { return avm::read_file_if_exists(files.log()).value_or(""); }
};

std::size_t open_fds() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

}  // namespace

TEST_CASE("the gateway injects the key, streams the answer as it comes, and meters it", "[gateway]") {
  pki();
  std::size_t fds_before = open_fds();
  {
    std::promise<void> first_seen;
    auto first_seen_f = first_seen.get_future();
    bool streamed = false;
    FakeUpstream up(true, [&](const Received&, const FakeUpstream::Send& send) {
      send("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
           "request-id: req_1\r\n\r\n");
      send(chunk(kStart));
      // The rest only once the guest has the first event: a gateway that
      // buffered the answer would never let it see that.
      streamed = first_seen_f.wait_for(20s) == std::future_status::ready;
      send(chunk(kRest));
      send("0\r\n\r\n");
    });
    Session s(up.url() + "/v1");
    {
      Guest g(s.dir.path());
      g.send(messages_request());
      REQUIRE(g.read_until("message_start"));
      first_seen.set_value();
      REQUIRE(g.read_until("message_stop"));
      REQUIRE(g.read_until("\r\n0\r\n\r\n"));
      CHECK(g.got.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
      CHECK(g.got.find("request-id: req_1") != std::string::npos);
      // Keep-alive: a second request on the same connection is served too.
      std::string first = g.got;
      g.got.clear();
      g.send(messages_request());
      INFO(first);
      INFO(s.log());
      REQUIRE(g.read_until("message_start"));
      REQUIRE(g.read_until("\r\n0\r\n\r\n"));
    }
    CHECK(streamed);
    auto reqs = up.requests();
    REQUIRE(reqs.size() == 2);
    const auto& h = reqs[0].head;
    INFO(h);
    CHECK(h.rfind("POST /v1/messages HTTP/1.1\r\n", 0) == 0);
    CHECK(h.find(std::string("x-api-key: ") + kRealKey + "\r\n") != std::string::npos);
    CHECK(h.find("guest-placeholder") == std::string::npos);
    CHECK(h.find("guest-token") == std::string::npos);
    CHECK(h.find("Authorization") == std::string::npos);
    CHECK(h.find("Host: localhost:") != std::string::npos);
    CHECK(h.find("anthropic-version: 2023-06-01") != std::string::npos);
    CHECK(reqs[0].body.find("secret prompt") != std::string::npos);

    auto u = load_usage(s.files);
    CHECK(u.tokens.input == 2 * 40);
    CHECK(u.tokens.output == 2 * 12);
    CHECK(u.requests == 2);
    std::string log = s.log();
    CHECK(log.find(R"("method":"POST","path":"/v1/messages","model":"claude-test-1","status":200,)"
                   R"("input_tokens":40,"output_tokens":12)") != std::string::npos);
    CHECK(log.find(kRealKey) == std::string::npos);
    CHECK(log.find("secret prompt") == std::string::npos);
    up.release();
  }
  CHECK(open_fds() == fds_before);
}

TEST_CASE("an upstream error is passed through as it came (plain http on loopback)", "[gateway]") {
  std::string body = R"({"type":"error","error":{"type":"api_error","message":"Internal server error"}})";
  FakeUpstream up(false, [&](const Received&, const FakeUpstream::Send& send) {
    send("HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body);
  });
  Session s(up.url());
  Guest g(s.dir.path());
  g.send(messages_request("", true));
  g.read_to_end();
  CHECK(g.got.rfind("HTTP/1.1 500 Internal Server Error\r\n", 0) == 0);
  CHECK(g.got.find(body) != std::string::npos);
  CHECK(s.log().find(R"("status":500)") != std::string::npos);
  REQUIRE(up.requests().size() == 1);
  CHECK(up.requests()[0].head.find(kRealKey) != std::string::npos);
}

TEST_CASE("an upstream that hangs becomes an Anthropic-shaped 504 within the deadline", "[gateway]") {
  pki();
  FakeUpstream* self = nullptr;
  FakeUpstream up(true, [&](const Received&, const FakeUpstream::Send&) { self->wait_release(); });
  self = &up;
  Session s(up.url(), std::nullopt, 300ms);
  {
    Guest g(s.dir.path());
    g.send(messages_request("", true));
    g.read_to_end();
    CHECK(g.got.rfind("HTTP/1.1 504 ", 0) == 0);
    CHECK(g.got.find(R"({"type":"error","error":{"type":"api_error","message":"agent-vm gateway: )") !=
          std::string::npos);
    CHECK(g.got.find("did not answer within 0.3 s") != std::string::npos);
  }
  up.release();
  CHECK(s.log().find(R"("status":504)") != std::string::npos);
  CHECK(load_usage(s.files).tokens.total() == 0);
}

TEST_CASE("a request past the budget is refused and never reaches the upstream", "[gateway]") {
  pki();
  FakeUpstream up(true, [&](const Received&, const FakeUpstream::Send& send) { send("HTTP/1.1 200 OK\r\n\r\n"); });
  Session s(up.url(), 100);
  add_usage(s.files, Tokens{80, 20});
  {
    Guest g(s.dir.path());
    g.send(messages_request("", true));
    g.read_to_end();
    CHECK(g.got.rfind("HTTP/1.1 " + std::to_string(kBudgetRefusal.status) + " ", 0) == 0);
    CHECK(g.got.find(std::string(R"("type":")") + kBudgetRefusal.type + "\"") != std::string::npos);
    CHECK(g.got.find("agent-resume gwtest --max-tokens N") != std::string::npos);
  }
  CHECK(up.connections() == 0);
  CHECK(s.log().find("\"status\":" + std::to_string(kBudgetRefusal.status)) != std::string::npos);
}

TEST_CASE("an upstream whose certificate does not verify is refused with 502", "[gateway]") {
  pki();
  FakeUpstream up(true, [&](const Received&, const FakeUpstream::Send& send) { send("HTTP/1.1 200 OK\r\n\r\n"); },
                  /*rogue=*/true);
  Session s(up.url());
  {
    Guest g(s.dir.path());
    g.send(messages_request("", true));
    g.read_to_end();
    CHECK(g.got.rfind("HTTP/1.1 502 ", 0) == 0);
    CHECK(g.got.find("certificate") != std::string::npos);
  }
  CHECK(up.requests().empty());
  CHECK(s.log().find(R"("status":502)") != std::string::npos);
}

TEST_CASE("a connection refused upstream is a 502 naming the address", "[gateway]") {
  unsigned short port;
  {
    asio::io_context ioc;
    tcp::acceptor a(ioc, {asio::ip::make_address("127.0.0.1"), 0});
    port = a.local_endpoint().port();
  }
  Session s("http://127.0.0.1:" + std::to_string(port));
  Guest g(s.dir.path());
  g.send(messages_request("", true));
  g.read_to_end();
  CHECK(g.got.rfind("HTTP/1.1 502 ", 0) == 0);
  CHECK(g.got.find("cannot connect to 127.0.0.1:" + std::to_string(port)) != std::string::npos);
}
