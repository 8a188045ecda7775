#include "launcher/egress.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/json.hpp>
#include <cctype>
#include <memory>
#include <ostream>

#include "launcher/gateway.h"
#include "util/error.h"
#include "util/strings.h"
#include "util/timestamp.h"

namespace avm::launcher {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

std::string lower(std::string_view s) {
  std::string out = lower_ascii(s);
  if (!out.empty() && out.back() == '.') out.pop_back();
  return out;
}

// Dot-separated labels of letters, digits and '-', none empty and none over
// 63 characters; a trailing dot (the DNS root) is allowed. '*' may only be
// the whole first label, with at least one label after it.
bool valid_hostname(std::string_view h) {
  if (!h.empty() && h.back() == '.') h.remove_suffix(1);
  if (h.empty() || h.size() > 253) return false;
  for (std::size_t start = 0;;) {
    auto dot = h.find('.', start);
    auto label = h.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.size() > 63) return false;
    if (label == "*") {
      if (start != 0 || dot == std::string_view::npos) return false;
    } else {
      for (char c : label)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-')) return false;
    }
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

// Splits "host:port" (or "[v6]:port"); port defaults to 443.
bool split_host_port(std::string_view s, std::string& host, std::uint16_t& port) {
  port = 443;
  if (!s.empty() && s.front() == '[') {
    auto close = s.find(']');
    if (close == std::string_view::npos) return false;
    host = std::string(s.substr(1, close - 1));
    s.remove_prefix(close + 1);
    if (s.empty()) return true;
    if (s.front() != ':') return false;
    s.remove_prefix(1);
  } else {
    auto colon = s.rfind(':');
    host = std::string(s.substr(0, colon));
    if (colon == std::string_view::npos) return true;
    s.remove_prefix(colon + 1);
  }
  if (s.empty() || s.size() > 5) return false;
  unsigned v = 0;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v == 0 || v > 65535) return false;
  port = static_cast<std::uint16_t>(v);
  return true;
}

}  // namespace

std::string normalize_allow_entry(std::string_view entry) {
  std::string host;
  std::uint16_t port;
  if (!split_host_port(entry, host, port) || !valid_hostname(host))
    throw Error("invalid --allow-host '" + std::string(entry) + "'",
                "give a host name, host:port or *.domain, e.g. --allow-host registry.npmjs.org");
  std::string out = lower(host);
  if (port != 443) out += ":" + std::to_string(port);
  return out;
}

bool egress_allowed(const EgressPolicy& policy, std::string_view host_in, std::uint16_t port) {
  std::string host = lower(host_in);
  if (host.empty()) return false;
  for (const auto& entry : policy.allow) {
    std::string ehost;
    std::uint16_t eport;
    if (!split_host_port(entry, ehost, eport)) continue;
    ehost = lower(ehost);
    if (eport != port) continue;
    if (ehost.rfind("*.", 0) == 0) {
      std::string suffix = ehost.substr(1);  // ".domain"
      if (host.size() > suffix.size() && host.compare(host.size() - suffix.size(), suffix.size(), suffix) == 0)
        return true;
    } else if (ehost == host) {
      return true;
    }
  }
  return false;
}

bool egress_address_forbidden(std::string_view ip) {
  boost::system::error_code ec;
  auto a = asio::ip::make_address(std::string(ip), ec);
  if (ec) return true;
  if (a.is_v6() && a.to_v6().is_v4_mapped())
    a = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  if (a.is_loopback() || a.is_unspecified() || a.is_multicast()) return true;
  if (a.is_v4()) {
    auto b = a.to_v4().to_bytes();
    if (b[0] == 169 && b[1] == 254) return true;              // link-local
    if (b[0] == 10 && b[1] == 0 && b[2] == 2) return true;    // the user network itself
    if (b[0] == 0) return true;
    if (b[0] >= 224) return true;
    return false;
  }
  auto v6 = a.to_v6();
  return v6.is_link_local() || v6.is_site_local();
}

std::string render_egress_config(const EgressConfig& c) {
  json::array allow;
  for (const auto& a : c.policy.allow) allow.emplace_back(a);
  json::object o{{"allow", std::move(allow)},
                 {"request_timeout_ms", c.deadlines.request.count()},
                 {"connect_timeout_ms", c.deadlines.connect.count()},
                 {"idle_timeout_ms", c.deadlines.idle.count()}};
  return json::serialize(o) + "\n";
}

EgressConfig parse_egress_config(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object())
    throw Error("egress.json is not a JSON object", "resume the session to rewrite it");
  const auto& o = v.as_object();
  EgressConfig c;
  if (auto a = o.if_contains("allow"); a && a->is_array())
    for (const auto& e : a->as_array())
      if (e.is_string()) c.policy.allow.emplace_back(e.get_string());
  auto ms = [&](std::string_view key, std::chrono::milliseconds& out) {
    if (auto x = o.if_contains(key); x && x->is_int64() && x->get_int64() > 0)
      out = std::chrono::milliseconds(x->get_int64());
  };
  ms("request_timeout_ms", c.deadlines.request);
  ms("connect_timeout_ms", c.deadlines.connect);
  ms("idle_timeout_ms", c.deadlines.idle);
  return c;
}

std::string render_egress_log_line(const EgressRecord& r) {
  json::object o{{"time", r.time},
                 {"target", r.target},
                 {"address", r.address},
                 {"verdict", r.verdict},
                 {"reason", r.reason},
                 {"bytes_up", r.bytes_up},
                 {"bytes_down", r.bytes_down},
                 {"duration_ms", r.duration_ms}};
  return json::serialize(o) + "\n";
}

namespace {

// Relays bytes both ways between the guest (in/out fds) and the upstream
// until both directions have ended, or nothing moved for `idle`.
class Relay : public std::enable_shared_from_this<Relay> {
 public:
  Relay(asio::posix::stream_descriptor in, asio::posix::stream_descriptor out, beast::tcp_stream up,
        std::chrono::milliseconds idle, EgressRecord& rec)
      : in_(std::move(in)), out_(std::move(out)), up_(std::move(up)), idle_(idle), timer_(in_.get_executor()),
        rec_(rec) {}

  void start(std::string initial_to_upstream) {
    auto self = shared_from_this();
    up_.expires_never();
    touch();
    watch();
    if (!initial_to_upstream.empty()) {
      pending_ = std::move(initial_to_upstream);
      asio::async_write(up_, asio::buffer(pending_), [self](auto ec, std::size_t n) {
        if (ec) return self->close_all("the upstream closed");
        self->rec_.bytes_up += n;
        self->guest_to_up();
      });
    } else {
      guest_to_up();
    }
    up_to_guest();
  }

 private:
  void touch() { timer_.expires_after(idle_); }
  // The idle deadline: re-armed by every transfer (which cancels the wait).
  void watch() {
    auto self = shared_from_this();
    timer_.async_wait([self](auto) {
      if (self->closed_) return;
      if (self->timer_.expiry() <= asio::steady_timer::clock_type::now())
        return self->close_all("idle for " + std::to_string(self->idle_.count() / 1000) + " s");
      self->watch();
    });
  }
  void guest_to_up() {
    auto self = shared_from_this();
    in_.async_read_some(asio::buffer(a_), [self](auto ec, std::size_t n) {
      if (ec) {
        boost::system::error_code ignore;
        self->up_.socket().shutdown(tcp::socket::shutdown_send, ignore);
        return self->direction_done();
      }
      self->touch();
      asio::async_write(self->up_, asio::buffer(self->a_, n), [self](auto ec2, std::size_t m) {
        if (ec2) return self->close_all("the upstream closed");
        self->rec_.bytes_up += m;
        self->guest_to_up();
      });
    });
  }
  void up_to_guest() {
    auto self = shared_from_this();
    up_.async_read_some(asio::buffer(b_), [self](auto ec, std::size_t n) {
      if (ec) {
        // QEMU hands us one socket as both stdin and stdout: half-close it so
        // the guest sees the end; a pipe is simply closed.
        boost::system::error_code ignore;
        if (::shutdown(self->out_.native_handle(), SHUT_WR) != 0) self->out_.close(ignore);
        return self->direction_done();
      }
      self->touch();
      asio::async_write(self->out_, asio::buffer(self->b_, n), [self](auto ec2, std::size_t m) {
        if (ec2) return self->close_all("the guest closed");
        self->rec_.bytes_down += m;
        self->up_to_guest();
      });
    });
  }
  void direction_done() {
    if (++done_ == 2) close_all("");
  }
  void close_all(const std::string& why) {
    if (closed_) return;
    closed_ = true;
    if (!why.empty()) rec_.reason += "; ended: " + why;
    boost::system::error_code ignore;
    timer_.cancel();
    in_.close(ignore);
    out_.close(ignore);
    up_.close();
  }

  asio::posix::stream_descriptor in_, out_;
  beast::tcp_stream up_;
  std::chrono::milliseconds idle_;
  asio::steady_timer timer_;
  EgressRecord& rec_;
  std::string pending_;
  int done_ = 0;
  bool closed_ = false;
  std::array<char, 65536> a_{}, b_{};
};

void reply(int fd, int status, const std::string& reason, const std::string& body) {
  std::string r = "HTTP/1.1 " + std::to_string(status) + " " + reason +
                  "\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: " +
                  std::to_string(body.size()) + "\r\n\r\n" + body;
  const char* p = r.data();
  size_t left = r.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n <= 0) return;
    p += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace

int serve_egress(int in_fd, int out_fd, const EgressPolicy& policy, std::ostream& log,
                 const EgressDeadlines& deadlines) {
  using clock = std::chrono::steady_clock;
  auto began = clock::now();
  EgressRecord rec;
  rec.time = utc_now_ms();
  // The one audit line of this connection, written however it ends.
  auto finish = [&](const char* verdict, std::string reason) {
    rec.verdict = verdict;
    rec.reason = std::move(reason);
    rec.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - began).count();
    log << render_egress_log_line(rec) << std::flush;
  };

  asio::io_context ioc;
  asio::posix::stream_descriptor in(ioc, ::dup(in_fd));
  beast::flat_buffer buf;
  http::request_parser<http::empty_body> parser;
  parser.header_limit(16 * 1024);
  // A CONNECT request has no body; stop after the header.
  parser.skip(true);

  // Read the request header under a deadline.
  boost::system::error_code read_ec = asio::error::timed_out;
  asio::steady_timer timer(ioc, deadlines.request);
  http::async_read_header(in, buf, parser, [&](auto ec, std::size_t) {
    read_ec = ec;
    timer.cancel();
  });
  bool read_expired = false;
  timer.async_wait([&](auto ec) {
    if (ec) return;
    read_expired = true;
    in.cancel();
  });
  ioc.run();
  ioc.restart();
  if (read_ec) {
    if (read_ec == asio::error::eof || read_ec == http::error::end_of_stream) {
      finish("failed", "the guest closed without a request");
    } else {
      finish("failed", read_expired ? "no request within the deadline"
                                    : "not an HTTP CONNECT request (" + read_ec.message() + ")");
      reply(out_fd, 400, "Bad Request", "agent-vm egress: expected an HTTP CONNECT request\n");
    }
    return 1;
  }
  auto& req = parser.get();
  rec.target = std::string(req.target());
  if (req.method() != http::verb::connect) {
    finish("denied", "only CONNECT is proxied, not " + std::string(req.method_string()));
    reply(out_fd, 405, "Method Not Allowed",
          "agent-vm egress only tunnels HTTPS (CONNECT); use https:// URLs\n");
    return 1;
  }
  std::string host;
  std::uint16_t port;
  const std::string& target = rec.target;
  if (!split_host_port(target, host, port)) {
    finish("failed", "the CONNECT target is not host:port");
    reply(out_fd, 400, "Bad Request", "CONNECT target must be host:port\n");
    return 1;
  }
  if (!egress_allowed(policy, host, port)) {
    std::string allowed;
    for (const auto& a : policy.allow) allowed += (allowed.empty() ? "" : ", ") + a;
    finish("denied", "not on the allowlist (" + allowed + ")");
    reply(out_fd, 403, "Forbidden",
          "agent-vm: " + target + " is not allowed for this session (allowed: " + allowed +
              "); respawn with --allow-host " + host + " or --net full\n");
    return 1;
  }

  // Resolve (asynchronously, under the connect deadline), skip forbidden
  // addresses, connect under the same deadline.
  tcp::resolver resolver(ioc);
  boost::system::error_code ec;
  tcp::resolver::results_type results;
  bool resolve_expired = false;
  asio::steady_timer rtimer(ioc, deadlines.connect);
  resolver.async_resolve(host, std::to_string(port), [&](auto e, tcp::resolver::results_type r) {
    ec = e;
    results = std::move(r);
    rtimer.cancel();
  });
  rtimer.async_wait([&](auto e) {
    if (e) return;
    resolve_expired = true;
    resolver.cancel();
  });
  ioc.run();
  ioc.restart();
  if (ec) {
    std::string why = resolve_expired ? "resolving took over the deadline" : "cannot resolve (" + ec.message() + ")";
    finish("failed", why);
    reply(out_fd, resolve_expired ? 504 : 502, resolve_expired ? "Gateway Timeout" : "Bad Gateway",
          "agent-vm egress: " + host + ": " + why + "\n");
    return 1;
  }
  std::vector<tcp::endpoint> eps;
  for (const auto& r : results)
    if (!egress_address_forbidden(r.endpoint().address().to_string())) eps.push_back(r.endpoint());
  if (eps.empty()) {
    finish("denied", "resolves only to local addresses");
    reply(out_fd, 403, "Forbidden", "agent-vm: " + host + " resolves to a local address\n");
    return 1;
  }
  beast::tcp_stream up(ioc);
  up.expires_after(deadlines.connect);
  boost::system::error_code conn_ec;
  tcp::endpoint connected;
  up.async_connect(eps, [&](auto e, const tcp::endpoint& ep) {
    conn_ec = e;
    connected = ep;
  });
  ioc.run();
  ioc.restart();
  if (conn_ec) {
    bool expired = conn_ec == beast::error::timeout;
    std::string why = expired ? "connecting took over the deadline" : "cannot connect (" + conn_ec.message() + ")";
    finish("failed", why);
    reply(out_fd, expired ? 504 : 502, expired ? "Gateway Timeout" : "Bad Gateway",
          "agent-vm egress: " + target + ": " + why + "\n");
    return 1;
  }
  rec.address = connected.address().to_string();
  if (connected.address().is_v6()) rec.address = "[" + rec.address + "]";
  rec.address += ":" + std::to_string(connected.port());
  rec.reason = "on the allowlist";
  static const std::string ok = "HTTP/1.1 200 Connection established\r\n\r\n";
  asio::posix::stream_descriptor out(ioc, ::dup(out_fd));
  boost::system::error_code wec;
  asio::write(out, asio::buffer(ok), wec);
  if (wec) {
    finish("allowed", "on the allowlist; the guest closed before the tunnel opened");
    return 1;
  }
  // Bytes the guest sent after the header (a TLS ClientHello) are already buffered.
  std::string early(static_cast<const char*>(buf.data().data()), buf.size());
  std::make_shared<Relay>(std::move(in), std::move(out), std::move(up), deadlines.idle, rec)->start(std::move(early));
  ioc.run();
  finish("allowed", rec.reason);
  return 0;
}

}  // namespace avm::launcher
