// serve_gateway(): the I/O half of launcher/gateway.h. One guest connection,
// HTTP/1.1 requests in a loop, each forwarded to the upstream with the real
// key and its answer streamed back chunk by chunk as it arrives. Every wait
// has a deadline: resolve, connect and TLS handshake (connect_timeout), each
// upstream read (read_timeout), the guest being idle (idle_timeout).
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <cstdio>

#include "launcher/gateway.h"
#include "util/error.h"
#include "util/file.h"
#include "util/timestamp.h"

namespace avm::launcher {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using namespace std::chrono;
using boost::system::error_code;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kRequestLimit = 64u * 1024 * 1024;
constexpr std::size_t kJsonKeep = 8u * 1024 * 1024;

std::string seconds_text(milliseconds d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(d.count()) / 1000.0);
  return buf;
}

// Why a request did not reach (or left) the upstream.
struct Failure {
  unsigned status = 502;
  std::string type = "api_error";
  std::string message;
};

bool hop_by_hop(std::string_view name) {
  static const char* const names[] = {"connection", "keep-alive", "proxy-connection", "proxy-authorization",
                                      "proxy-authenticate", "te", "trailer", "transfer-encoding", "upgrade",
                                      "content-length", "host", "expect"};
  for (const char* n : names)
    if (beast::iequals(name, n)) return true;
  return false;
}

class Connection {
 public:
  Connection(asio::io_context& ioc, int in_fd, int out_fd, std::filesystem::path dir)
      : ioc_(ioc), in_(ioc, ::dup(in_fd)), out_(ioc, ::dup(out_fd)), files_(std::move(dir)), guest_timer_(ioc) {}

  asio::awaitable<void> run() {
    try {
      cfg_ = load_gateway_config(files_);
    } catch (const std::exception&) {
      // Answer the first request with the reason; the defaults time it out.
      config_error_ = "the session's gateway.json in " + files_.dir.string() +
                      " is missing or broken; resume the session to rewrite it";
    }
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(64 * 1024);
      parser.body_limit(kRequestLimit);
      arm(cfg_.idle_timeout);
      auto [ec, n] = co_await http::async_read_header(in_, guest_buf_, parser, kTuple);
      disarm();
      (void)n;
      if (ec) {
        if (ec != http::error::end_of_stream && ec != asio::error::eof && ec != asio::error::operation_aborted &&
            ec != asio::error::connection_reset)
          co_await send_error(400, "invalid_request_error", "the request is not valid HTTP/1.1 (" + ec.message() + ")",
                              false);
        break;
      }
      if (beast::iequals(parser.get()[http::field::expect], "100-continue")) {
        static const std::string cont = "HTTP/1.1 100 Continue\r\n\r\n";
        arm(cfg_.idle_timeout);
        auto [wec, wn] = co_await asio::async_write(out_, asio::buffer(cont), kTuple);
        disarm();
        (void)wn;
        if (wec) break;
      }
      arm(cfg_.idle_timeout);
      auto [bec, bn] = co_await http::async_read(in_, guest_buf_, parser, kTuple);
      disarm();
      (void)bn;
      if (bec) {
        if (bec == http::error::body_limit)
          co_await send_error(413, "request_too_large", "the request body is over 64 MiB", false);
        break;
      }
      http::request<http::string_body> req = parser.release();
      bool keep = req.keep_alive();
      bool ok = co_await handle(req, keep);
      if (!ok || !keep) break;
    }
    error_code ignore;
    // QEMU hands one socket as stdin and stdout: half-close so the guest sees the end.
    if (::shutdown(out_.native_handle(), SHUT_WR) != 0) out_.close(ignore);
  }

 private:
  // The guest's deadline: cancels whatever waits on it.
  void arm(milliseconds d) {
    guest_timer_.expires_after(d);
    guest_timer_.async_wait([this](error_code ec) {
      if (ec) return;
      error_code ignore;
      in_.cancel(ignore);
      out_.cancel(ignore);
    });
  }
  void disarm() { guest_timer_.cancel(); }

  asio::awaitable<bool> write_guest(std::string_view bytes) {
    arm(cfg_.idle_timeout);
    auto [ec, n] = co_await asio::async_write(out_, asio::buffer(bytes.data(), bytes.size()), kTuple);
    disarm();
    (void)n;
    co_return !ec;
  }

  asio::awaitable<bool> send_error(unsigned status, std::string_view type, const std::string& message, bool keep) {
    http::response<http::string_body> r{static_cast<http::status>(status), 11};
    r.set(http::field::content_type, "application/json");
    r.set("x-should-retry", "false");
    r.keep_alive(keep);
    r.body() = anthropic_error(type, message);
    r.prepare_payload();
    arm(cfg_.idle_timeout);
    auto [ec, n] = co_await http::async_write(out_, r, kTuple);
    disarm();
    (void)n;
    co_return !ec;
  }

  asio::awaitable<bool> handle(http::request<http::string_body>& req, bool keep) {
    auto began = steady_clock::now();
    GatewayLogEntry log;
    log.time = utc_now_ms();
    log.method = std::string(req.method_string());
    std::string target(req.target());
    log.path = target.substr(0, target.find('?'));
    log.model = model_of_request(req.body());
    auto finish = [&](unsigned status, std::string error) {
      log.status = status;
      log.error = std::move(error);
      log.duration_ms = duration_cast<milliseconds>(steady_clock::now() - began).count();
      append_log_line(files_.log(), render_gateway_log_line(log));
    };

    std::string key;
    Upstream up;
    std::string setup_error;
    try {
      if (!config_error_.empty()) throw Error(config_error_);
      cfg_ = load_gateway_config(files_);  // resume may have raised the budget
      key = read_file(files_.key());
      while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) key.pop_back();
      up = parse_upstream(cfg_.upstream);
    } catch (const std::exception& e) {
      setup_error = e.what();
    }
    if (!setup_error.empty()) {
      finish(500, setup_error);
      co_return co_await send_error(500, "api_error", setup_error, keep);
    }
    if (target.empty() || target.front() != '/') {
      finish(400, "request target is not a path");
      co_return co_await send_error(400, "invalid_request_error", "request target must be a path like /v1/messages",
                                    keep);
    }

    BudgetVerdict verdict = budget_decision(load_usage(files_).tokens.total(), cfg_.max_tokens, log.method,
                                            log.path, cfg_.session);
    if (!verdict.allow) {
      finish(kBudgetRefusal.status, "budget spent");
      co_return co_await send_error(kBudgetRefusal.status, kBudgetRefusal.type, verdict.message, keep);
    }

    http::request<http::string_body> ureq{req.method(), up.base_path + target, 11};
    for (const auto& f : req) {
      std::string_view name = f.name_string();
      if (hop_by_hop(name) || beast::iequals(name, "authorization") || beast::iequals(name, "x-api-key") ||
          beast::iequals(name, "accept-encoding"))
        continue;
      ureq.insert(name, f.value());
    }
    bool default_port = up.port == (up.tls ? "443" : "80");
    std::string host_hdr = up.host.find(':') != std::string::npos ? "[" + up.host + "]" : up.host;
    ureq.set(http::field::host, default_port ? host_hdr : host_hdr + ":" + up.port);
    ureq.set("x-api-key", key);
    ureq.set(http::field::accept_encoding, "identity");
    ureq.keep_alive(false);
    ureq.body() = std::move(req.body());
    ureq.prepare_payload();

    Outcome out;
    if (up.tls) {
      ssl::context ctx(ssl::context::tls_client);
      ctx.set_default_verify_paths();
      ctx.set_verify_mode(ssl::verify_peer);
      beast::ssl_stream<beast::tcp_stream> s(ioc_, ctx);
      out = co_await forward(s, up, ureq, keep);
    } else {
      beast::tcp_stream s(ioc_);
      out = co_await forward(s, up, ureq, keep);
    }

    if (out.metered) {
      try {
        add_usage(files_, out.tokens);
      } catch (const std::exception& e) {
        if (out.error.empty()) out.error = std::string("usage not recorded: ") + e.what();
      }
    }
    log.tokens = out.tokens;
    if (out.failure) {
      finish(out.failure->status, out.failure->message);
      co_return co_await send_error(out.failure->status, out.failure->type, out.failure->message, keep);
    }
    finish(out.status, out.error);
    if (out.terminate && !co_await write_guest("0\r\n\r\n")) out.guest_ok = false;
    co_return out.guest_ok;
  }

  struct Outcome {
    std::optional<Failure> failure;  // nothing reached the guest yet: answer with this
    unsigned status = 0;             // the upstream's status, relayed
    bool metered = false;
    Tokens tokens;
    std::string error;
    bool guest_ok = true;  // the connection to the guest may carry another request
    // The answer's last chunk is still to be written: after the usage and
    // the log, so whoever sees the answer end sees them too.
    bool terminate = false;
  };

  template <class Stream>
  asio::awaitable<Outcome> forward(Stream& s, const Upstream& up, http::request<http::string_body>& ureq, bool keep) {
    Outcome out;
    auto& sock = beast::get_lowest_layer(s);
    std::string where = up.host + ":" + up.port;
    auto fail = [&](unsigned status, std::string message) {
      out.failure = Failure{status, "api_error", std::move(message)};
      return out;
    };

    // Resolve, under the connect deadline (the resolver has no expiry of its own).
    tcp::resolver resolver(ioc_);
    asio::steady_timer t(ioc_);
    bool resolve_expired = false;
    t.expires_after(cfg_.connect_timeout);
    t.async_wait([&](error_code ec) {
      if (ec) return;
      resolve_expired = true;
      resolver.cancel();
    });
    auto [rec, results] = co_await resolver.async_resolve(up.host, up.port, kTuple);
    t.cancel();
    if (resolve_expired)
      co_return fail(504, "resolving " + up.host + " took over " + seconds_text(cfg_.connect_timeout) +
                              "; check the host's DNS, or ANTHROPIC_BASE_URL");
    if (rec)
      co_return fail(502, "cannot resolve " + up.host + " (" + rec.message() +
                              "); check the host's network, or ANTHROPIC_BASE_URL");

    sock.expires_after(cfg_.connect_timeout);
    auto [cec, ep] = co_await sock.async_connect(results, kTuple);
    (void)ep;
    if (cec == beast::error::timeout)
      co_return fail(504, "connecting to " + where + " took over " + seconds_text(cfg_.connect_timeout) +
                              "; check the host's network, or ANTHROPIC_BASE_URL");
    if (cec)
      co_return fail(502, "cannot connect to " + where + " (" + cec.message() +
                              "); check the host's network, or ANTHROPIC_BASE_URL");

    if constexpr (!std::is_same_v<Stream, beast::tcp_stream>) {
      error_code not_ip;
      (void)asio::ip::make_address(up.host, not_ip);
      if (not_ip && !SSL_set_tlsext_host_name(s.native_handle(), up.host.c_str()))
        co_return fail(502, "cannot set the TLS server name " + up.host);
      s.set_verify_callback(ssl::host_name_verification(up.host));
      auto [hec] = co_await s.async_handshake(ssl::stream_base::client, kTuple);
      if (hec == beast::error::timeout)
        co_return fail(504, "the TLS handshake with " + where + " took over " + seconds_text(cfg_.connect_timeout));
      if (hec) {
        std::string why = hec.message();
        long v = SSL_get_verify_result(s.native_handle());
        if (v != X509_V_OK) why = X509_verify_cert_error_string(v);
        co_return fail(502, "TLS with " + where + " failed (" + why +
                                "); the upstream's certificate must verify against the host's CA store "
                                "(SSL_CERT_FILE) and name " + up.host);
      }
    }

    sock.expires_after(cfg_.read_timeout);
    auto [wec, wn] = co_await http::async_write(s, ureq, kTuple);
    (void)wn;
    if (wec == beast::error::timeout)
      co_return fail(504, "sending the request to " + where + " took over " + seconds_text(cfg_.read_timeout));
    if (wec) co_return fail(502, "sending the request to " + where + " failed (" + wec.message() + ")");

    beast::flat_buffer ubuf;
    http::response_parser<http::buffer_body> p;
    p.body_limit(boost::none);
    sock.expires_after(cfg_.read_timeout);
    auto [hec2, hn] = co_await http::async_read_header(s, ubuf, p, kTuple);
    (void)hn;
    if (hec2 == beast::error::timeout)
      co_return fail(504, where + " did not answer within " + seconds_text(cfg_.read_timeout) +
                              "; the model API may be overloaded: try again later");
    if (hec2)
      co_return fail(502, where + " broke off before answering (" + hec2.message() + "); try again");

    // The answer's header goes to the guest at once; its body follows chunk by chunk.
    out.metered = true;
    out.status = p.get().result_int();
    std::string ctype(p.get()[http::field::content_type]);
    bool is_sse = ctype.find("text/event-stream") != std::string::npos;
    bool is_json = ctype.find("json") != std::string::npos;
    http::response<http::empty_body> gres{p.get().result(), 11};
    for (const auto& f : p.get())
      if (!hop_by_hop(f.name_string())) gres.insert(f.name_string(), f.value());
    gres.keep_alive(keep);
    bool body_follows = !p.is_done();
    if (body_follows)
      gres.chunked(true);
    else
      gres.content_length(0);
    {
      http::response_serializer<http::empty_body> sr{gres};
      arm(cfg_.idle_timeout);
      auto [gec, gn] = co_await http::async_write_header(out_, sr, kTuple);
      disarm();
      (void)gn;
      if (gec) {
        out.guest_ok = false;
        out.error = "the guest closed the connection";
        co_return out;
      }
    }
    if (!body_follows) co_return out;

    SseParser sse;
    std::string json_body;
    std::vector<char> buf(16 * 1024);
    while (!p.is_done()) {
      p.get().body().data = buf.data();
      p.get().body().size = buf.size();
      sock.expires_after(cfg_.read_timeout);
      auto [ec, n] = co_await http::async_read_some(s, ubuf, p, kTuple);
      (void)n;
      if (ec == http::error::need_buffer) ec = {};
      std::size_t got = buf.size() - p.get().body().size;
      if (got > 0) {
        std::string_view piece(buf.data(), got);
        if (is_sse)
          for (const auto& e : sse.feed(piece)) meter_event(e, out.tokens);
        else if (is_json && json_body.size() + got <= kJsonKeep)
          json_body.append(piece);
        char head[24];
        int hl = std::snprintf(head, sizeof head, "%zx\r\n", got);
        std::string chunk(head, static_cast<std::size_t>(hl));
        chunk.append(piece);
        chunk += "\r\n";
        if (!co_await write_guest(chunk)) {
          out.guest_ok = false;
          out.error = "the guest closed the connection mid-answer";
          co_return out;
        }
      }
      if (ec) {
        // The guest already has the status: it learns of the failure from
        // an SSE error event (what the API itself sends mid-stream), and the
        // connection ends.
        out.error = ec == beast::error::timeout
                        ? where + " went silent for " + seconds_text(cfg_.read_timeout) + " mid-answer"
                        : where + " broke off mid-answer (" + ec.message() + ")";
        out.guest_ok = false;
        if (is_sse) {
          std::string ev = "event: error\ndata: " + anthropic_error("api_error", out.error + "; try again") + "\n\n";
          char head[24];
          int hl = std::snprintf(head, sizeof head, "%zx\r\n", ev.size());
          co_await write_guest(std::string(head, static_cast<std::size_t>(hl)) + ev + "\r\n");
        }
        out.terminate = true;
        co_return out;
      }
    }
    if (is_json) out.tokens = usage_of_response(json_body);
    out.terminate = true;
    if (out.status >= 400 && out.error.empty()) out.error = "the upstream answered " + std::to_string(out.status);
    co_return out;
  }

  asio::io_context& ioc_;
  asio::posix::stream_descriptor in_, out_;
  GatewayFiles files_;
  GatewayConfig cfg_;
  std::string config_error_;
  beast::flat_buffer guest_buf_;
  asio::steady_timer guest_timer_;
};

}  // namespace

int serve_gateway(int in_fd, int out_fd, const std::filesystem::path& host_dir) {
  try {
    asio::io_context ioc;
    Connection c(ioc, in_fd, out_fd, host_dir);
    asio::co_spawn(ioc, c.run(), [](std::exception_ptr) {});
    ioc.run();
  } catch (const std::exception&) {
  }
  return 0;
}

}  // namespace avm::launcher
