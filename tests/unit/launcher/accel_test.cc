#include "launcher/accel.h"

#include <catch2/catch.hpp>

#include "util/error.h"
#include "util/file.h"
#include "util/temp_dir.h"

using namespace avm::launcher;
using S = KvmDevice::State;
using namespace std::chrono_literals;

namespace {

AccelInputs inputs(AccelRequest r, S state) {
  AccelInputs in;
  in.request = r;
  in.kvm = {state, "detail"};
  return in;
}

}  // namespace

TEST_CASE("no /dev/kvm: auto picks TCG and says why, without probing", "[accel]") {
  auto in = inputs(AccelRequest::Auto, S::Missing);
  in.kvm.detail = "/dev/kvm does not exist";
  bool probed = false;
  in.probe = [&] { probed = true; return ProbeResult{true, 1s, ""}; };
  auto c = choose_accel(in);
  CHECK(c.accel == Accel::Tcg);
  CHECK(c.reason.find("/dev/kvm does not exist") != std::string::npos);
  CHECK_FALSE(probed);
}

TEST_CASE("a healthy KVM is probed once, then the verdict is cached", "[accel]") {
  std::optional<CachedVerdict> cache;
  int probes = 0;
  auto in = inputs(AccelRequest::Auto, S::Usable);
  in.cached = [&] { return cache; };
  in.remember = [&](const CachedVerdict& v) { cache = v; };
  in.probe = [&] { ++probes; return ProbeResult{true, 800ms, ""}; };
  auto c1 = choose_accel(in);
  CHECK(c1.accel == Accel::Kvm);
  CHECK(c1.probed);
  auto c2 = choose_accel(in);
  CHECK(c2.accel == Accel::Kvm);
  CHECK(c2.cached);
  CHECK(probes == 1);
}

TEST_CASE("a /dev/kvm on which guests stall gives TCG, and says so", "[accel]") {
  std::optional<CachedVerdict> cache;
  auto in = inputs(AccelRequest::Auto, S::Usable);
  in.cached = [&] { return cache; };
  in.remember = [&](const CachedVerdict& v) { cache = v; };
  in.probe = [] { return ProbeResult{false, 10s, "no sign of life within 10.0s"}; };
  auto c = choose_accel(in);
  CHECK(c.accel == Accel::Tcg);
  CHECK(c.reason.find("stall") != std::string::npos);
  REQUIRE(cache.has_value());
  CHECK_FALSE(cache->kvm_works);
  CHECK(choose_accel(in).cached);
}

TEST_CASE("explicit requests are honoured or refused with the fix", "[accel]") {
  CHECK(choose_accel(inputs(AccelRequest::Tcg, S::Usable)).accel == Accel::Tcg);
  CHECK(choose_accel(inputs(AccelRequest::Kvm, S::Usable)).accel == Accel::Kvm);
  try {
    choose_accel(inputs(AccelRequest::Kvm, S::NoAccess));
    FAIL("kvm without access accepted");
  } catch (const avm::Error& e) {
    CHECK(e.hint().find("kvm group") != std::string::npos);
  }
  CHECK_THROWS_AS(choose_accel(inputs(AccelRequest::Kvm, S::Missing)), avm::Error);
}

TEST_CASE("accelerator names parse, case-insensitively, and the environment is read", "[accel]") {
  CHECK(parse_accel_request("KVM") == AccelRequest::Kvm);
  CHECK(parse_accel_request("tcg") == AccelRequest::Tcg);
  CHECK_THROWS_WITH(parse_accel_request("hvf"), Catch::Contains("hvf"));
  ::setenv("AGENT_VM_ACCEL", "tcg", 1);
  CHECK(accel_request_from(std::nullopt) == AccelRequest::Tcg);
  CHECK(accel_request_from(std::string("kvm")) == AccelRequest::Kvm);
  ::setenv("AGENT_VM_ACCEL", "bogus", 1);
  CHECK_THROWS_WITH(accel_request_from(std::nullopt), Catch::Contains("AGENT_VM_ACCEL"));
  ::unsetenv("AGENT_VM_ACCEL");
  CHECK(accel_request_from(std::nullopt) == AccelRequest::Auto);
}

TEST_CASE("the verdict cache is keyed by host and survives a reload", "[accel]") {
  avm::TempDir d;
  auto f = d.path() / "accel.json";
  save_verdict(f, "k1", {false, "stalls"});
  auto v = load_verdict(f, "k1");
  REQUIRE(v.has_value());
  CHECK_FALSE(v->kvm_works);
  CHECK(v->reason == "stalls");
  CHECK_FALSE(load_verdict(f, "k2").has_value());
  avm::write_file_atomic(f, "{garbage");
  CHECK_FALSE(load_verdict(f, "k1").has_value());
}

TEST_CASE("the host's choice reads the verdict cache, and probes nothing without an image", "[accel]") {
  avm::TempDir d;
  HostAccelQuery q;
  q.kvm = {S::Usable, "/dev/kvm is usable"};
  q.qemu_version = "7.2.0";
  q.verdict_file = d.path() / "accel.json";
  bool probing = false;
  q.probing = [&] { probing = true; };
  // Nothing cached, no kernel to boot: KVM, unprobed, and nothing remembered.
  AccelChoice c = choose_host_accel(q);
  CHECK(c.accel == Accel::Kvm);
  CHECK(c.reason.find("not probed") != std::string::npos);
  CHECK_FALSE(probing);
  CHECK_FALSE(load_verdict(q.verdict_file, host_key(q.qemu_version)).has_value());
  // A cached verdict for this host and QEMU decides, without a probe.
  save_verdict(q.verdict_file, host_key(q.qemu_version), {false, "guests stall"});
  q.kernel = d.path() / "no-such-kernel";
  c = choose_host_accel(q);
  CHECK(c.accel == Accel::Tcg);
  CHECK(c.cached);
  CHECK(c.reason.find("guests stall (cached)") != std::string::npos);
  CHECK_FALSE(probing);
  // --accel tcg never looks at the cache.
  q.request = AccelRequest::Tcg;
  CHECK(choose_host_accel(q).reason == "TCG (software emulation) as requested");
}

TEST_CASE("this host's /dev/kvm is described", "[accel]") {
  auto k = inspect_kvm("/nonexistent/kvm");
  CHECK(k.state == S::Missing);
  CHECK(k.detail.find("does not exist") != std::string::npos);
}

TEST_CASE("an image of another architecture runs under TCG, and the reason says so", "[accel]") {
  auto in = inputs(AccelRequest::Auto, S::Usable);
  in.guest = GuestArch::Aarch64;
  in.host = GuestArch::X86_64;
  bool probed = false;
  in.probe = [&] { probed = true; return ProbeResult{true, 1s, ""}; };
  auto c = choose_accel(in);
  CHECK(c.accel == Accel::Tcg);
  CHECK(c.reason.find("the image is aarch64 and this host is x86_64") != std::string::npos);
  CHECK(c.reason.find("KVM runs guests of the host's own architecture only") != std::string::npos);
  CHECK_FALSE(probed);
  // Asked for KVM: refused with the fix.
  in.request = AccelRequest::Kvm;
  try {
    choose_accel(in);
    FAIL("KVM accepted for an aarch64 image on an x86_64 host");
  } catch (const avm::Error& e) {
    CHECK(std::string(e.what()).find("aarch64") != std::string::npos);
    CHECK(e.hint().find("--accel tcg") != std::string::npos);
  }
  in.request = AccelRequest::Tcg;
  CHECK(choose_accel(in).accel == Accel::Tcg);
  // An aarch64 image on an aarch64 host with KVM: KVM, as for x86 on x86.
  in = inputs(AccelRequest::Kvm, S::Usable);
  in.guest = GuestArch::Aarch64;
  in.host = GuestArch::Aarch64;
  CHECK(choose_accel(in).accel == Accel::Kvm);
}
