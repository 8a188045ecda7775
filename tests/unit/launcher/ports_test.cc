#include "launcher/ports.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <set>
#include <thread>

#include "util/error.h"
#include "util/fd.h"
#include "util/temp_dir.h"

using namespace avm::launcher;

namespace {

// A listener on 127.0.0.1:port standing in for a service outside agent-vm.
avm::Fd listen_on(std::uint16_t port) {
  avm::Fd s(::socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(s.get(), 1) == 0);
  return s;
}

// A range of its own per test binary run, away from 2222 where real sessions
// (and other tests) take ports: the tests see only their own reservations.
PortRange test_range() {
  static const std::uint16_t base = static_cast<std::uint16_t>(40000 + (::getpid() % 200) * 100);
  return {base, static_cast<std::uint16_t>(base + 99)};
}

}  // namespace

TEST_CASE("ports are handed out from the start of the range and never twice while held", "[ports]") {
  CHECK(PortRange{}.first == 2222);
  avm::TempDir locks;
  auto a = reserve_port(std::nullopt, locks.path(), test_range());
  auto b = reserve_port(std::nullopt, locks.path(), test_range());
  CHECK(a.port >= test_range().first);
  CHECK(b.port > a.port);
  auto a_port = a.port;
  { auto gone = std::move(a); }
  // Released: the same port comes back.
  auto c = reserve_port(std::nullopt, locks.path(), test_range());
  CHECK(c.port == a_port);
}

TEST_CASE("a port bound by another program is skipped and named when asked for", "[ports]") {
  avm::TempDir locks;
  auto first = reserve_port(std::nullopt, locks.path(), test_range());
  std::uint16_t busy = first.port;
  { auto release = std::move(first); }
  avm::Fd listener = listen_on(busy);
  auto r = reserve_port(std::nullopt, locks.path(), test_range());
  CHECK(r.port != busy);
  try {
    reserve_port(busy, locks.path());
    FAIL("a taken port was handed out");
  } catch (const avm::Error& e) {
    std::string what = e.what();
    CHECK(what.find("port " + std::to_string(busy) + " is in use") != std::string::npos);
    CHECK(what.find("pid " + std::to_string(::getpid())) != std::string::npos);
    CHECK(e.hint().find("--port") != std::string::npos);
  }
}

TEST_CASE("a port held by another session names that session", "[ports]") {
  avm::TempDir locks;
  auto held = reserve_port(std::nullopt, locks.path(), test_range());
  held.set_owner("agent-vm session k3f9ab (pid 4121)");
  try {
    reserve_port(held.port, locks.path());
    FAIL("a held port was handed out");
  } catch (const avm::Error& e) {
    CHECK(std::string(e.what()).find("session k3f9ab") != std::string::npos);
  }
}

TEST_CASE("concurrent reservations get distinct ports", "[ports]") {
  avm::TempDir locks;
  std::vector<std::optional<PortReservation>> got(16);
  std::vector<std::thread> ts;
  for (size_t i = 0; i < got.size(); ++i)
    ts.emplace_back([&, i] { got[i].emplace(reserve_port(std::nullopt, locks.path(), test_range())); });
  for (auto& t : ts) t.join();
  std::set<std::uint16_t> ports;
  for (auto& g : got) ports.insert(g->port);
  CHECK(ports.size() == got.size());
}

TEST_CASE("the preferred port is kept when free, replaced when not", "[ports]") {
  avm::TempDir locks;
  auto a = reserve_port(std::nullopt, locks.path(), test_range());
  std::uint16_t p = a.port;
  auto b = reserve_port_preferring(p, locks.path(), test_range());
  CHECK(b.port != p);
  { auto release = std::move(a); }
  auto c = reserve_port_preferring(p, locks.path(), test_range());
  CHECK(c.port == p);
}

TEST_CASE("port values are validated", "[ports]") {
  CHECK(parse_port("2222") == 2222);
  CHECK_THROWS_AS(parse_port("0"), avm::Error);
  CHECK_THROWS_AS(parse_port("65536"), avm::Error);
  CHECK_THROWS_AS(parse_port("22x"), avm::Error);
  CHECK_THROWS_AS(parse_port(""), avm::Error);
}
