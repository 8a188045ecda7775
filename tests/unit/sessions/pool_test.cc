#include "sessions/pool.h"

#include <catch2/catch.hpp>

#include "util/error.h"

using namespace avm::sessions;
using H = SlotHealth;

namespace {

SlotRecord record(SlotRecord::State state, std::optional<long long> pid = 4242) {
  SlotRecord r;
  r.id = "k3f9ab";
  r.state = state;
  r.pid = pid;
  r.created = "2026-01-01T00:00:00.000Z";
  return r;
}

SlotSeen seen(std::optional<SlotRecord> r, bool owner, bool qemu, std::string qmp = "", bool guest = false) {
  SlotSeen s;
  s.asked = !qmp.empty() || guest;
  s.record = std::move(r);
  s.owner_alive = owner;
  s.qemu_alive = qemu;
  s.qmp_status = std::move(qmp);
  s.guest_up = guest;
  return s;
}

SlotView view(std::string id, H h, std::string created, PoolShape shape = {}) {
  SlotView v;
  v.id = std::move(id);
  v.health = h;
  v.created = std::move(created);
  v.shape = std::move(shape);
  return v;
}

PoolShape small() {
  PoolShape s;
  s.memory_mib = 512;
  return s;
}

}  // namespace

TEST_CASE("a ready slot is one whose QEMU lives, runs and whose guest agent answers", "[pool]") {
  using S = SlotRecord::State;
  CHECK(classify_slot(seen(record(S::Ready), false, true, "running", true)) == H::Ready);
  CHECK(classify_slot(seen(record(S::Ready), false, false, "running", true)) == H::Dead);  // killed, or a zombie
  CHECK(classify_slot(seen(record(S::Ready), false, true, "paused", true)) == H::Dead);   // not running
  CHECK(classify_slot(seen(record(S::Ready, std::nullopt), false, false)) == H::Dead);
}

TEST_CASE("a slot that is slow to answer is silent, not dead", "[pool]") {
  using S = SlotRecord::State;
  SlotSeen monitor_silent = seen(record(S::Ready), false, true);
  monitor_silent.asked = true;
  CHECK(classify_slot(monitor_silent) == H::Silent);
  CHECK(classify_slot(seen(record(S::Ready), false, true, "running", false)) == H::Silent);  // guest agent silent
  // Not asked (the pool's own refill): a live QEMU booted to the end counts.
  CHECK(classify_slot(seen(record(S::Ready), false, true)) == H::Ready);
  CHECK(classify_slot(seen(record(S::Ready), false, false)) == H::Dead);
}

TEST_CASE("a booting slot lives while its booter does, and its QEMU once started", "[pool]") {
  using S = SlotRecord::State;
  CHECK(classify_slot(seen(record(S::Booting, std::nullopt), true, false)) == H::Booting);
  CHECK(classify_slot(seen(record(S::Booting), true, true)) == H::Booting);
  CHECK(classify_slot(seen(record(S::Booting), true, false)) == H::Dead);   // QEMU died while booting
  CHECK(classify_slot(seen(record(S::Booting), false, true)) == H::Dead);   // abandoned by a booter that died
  CHECK(classify_slot(seen(record(S::Booting, std::nullopt), false, false)) == H::Dead);
}

TEST_CASE("a taken slot is abandoned once the spawn that took it is gone", "[pool]") {
  using S = SlotRecord::State;
  CHECK_FALSE(take_abandoned(seen(record(S::Taken), true, true)));  // its spawn still works on it
  CHECK(take_abandoned(seen(record(S::Taken), false, true)));        // the spawn was killed
  CHECK(take_abandoned(seen(record(S::Ready), true, true)));         // nobody recorded the take
  CHECK(take_abandoned(seen(std::nullopt, true, true)));
  // Never handed out again as a pool slot.
  CHECK(classify_slot(seen(record(S::Taken), true, true, "running", true)) == H::Dead);
}

TEST_CASE("a slot without a readable record is dead", "[pool]") {
  CHECK(classify_slot(seen(std::nullopt, true, true, "running", true)) == H::Dead);
}

TEST_CASE("a spawn takes the oldest ready slot of its shape", "[pool]") {
  std::vector<SlotView> slots = {view("b", H::Ready, "2026-01-01T00:00:02.000Z"),
                                 view("a", H::Ready, "2026-01-01T00:00:03.000Z"),
                                 view("c", H::Booting, "2026-01-01T00:00:01.000Z"),
                                 view("d", H::Dead, "2026-01-01T00:00:00.000Z"),
                                 view("e", H::Ready, "2026-01-01T00:00:00.500Z", small())};
  CHECK(choose_slot(slots, PoolShape{}) == std::optional<std::string>("b"));
  CHECK(choose_slot(slots, small()) == std::optional<std::string>("e"));
  PoolShape full;
  full.net = "full";
  CHECK_FALSE(choose_slot(slots, full));
  CHECK_FALSE(choose_slot({}, PoolShape{}));
  CHECK_FALSE(choose_slot({view("c", H::Booting, "x"), view("d", H::Dead, "y")}, PoolShape{}));
  CHECK_FALSE(choose_slot({view("s", H::Silent, "x")}, PoolShape{}));
}

TEST_CASE("the pool plan boots what is missing and removes dead, foreign and extra slots", "[pool]") {
  PoolConfig two;
  two.size = 2;
  SECTION("an empty pool boots its size") { CHECK(plan_pool({}, two) == PoolPlan{2, {}}); }
  SECTION("booting slots count") {
    CHECK(plan_pool({view("a", H::Booting, "1")}, two) == PoolPlan{1, {}});
  }
  SECTION("a silent slot is kept: a loaded host answers late") {
    CHECK(plan_pool({view("a", H::Silent, "1"), view("b", H::Ready, "2")}, two) == PoolPlan{0, {}});
  }
  SECTION("a dead slot is removed and replaced") {
    CHECK(plan_pool({view("a", H::Ready, "1"), view("b", H::Dead, "2")}, two) == PoolPlan{1, {"b"}});
  }
  SECTION("slots of another shape are removed") {
    CHECK(plan_pool({view("a", H::Ready, "1", small()), view("b", H::Ready, "2")}, two) == PoolPlan{1, {"a"}});
  }
  SECTION("shrinking keeps the oldest ready slots, booting ones go first") {
    PoolConfig one;
    one.size = 1;
    CHECK(plan_pool({view("a", H::Booting, "0"), view("b", H::Ready, "2"), view("c", H::Ready, "1")}, one) ==
          PoolPlan{0, {"a", "b"}});
  }
  SECTION("size 0 removes everything") {
    PoolConfig zero;
    CHECK(plan_pool({view("a", H::Booting, "0"), view("b", H::Ready, "2")}, zero) == PoolPlan{0, {"a", "b"}});
  }
  SECTION("a full pool does nothing") {
    CHECK(plan_pool({view("a", H::Ready, "0"), view("b", H::Booting, "2")}, two) == PoolPlan{0, {}});
  }
}

TEST_CASE("a claim waits for the agent alone only when the pooled boot saw sshd and the claim kept it", "[pool]") {
  using avm::launcher::ReadyCheck;
  SlotRecord r = record(SlotRecord::State::Taken);
  CHECK(claim_wait_from(r, "") == ReadyCheck::Ssh);  // an image whose sshd starts at the claim
  r.agent_waits = true;
  CHECK(claim_wait_from(r, "agent-vm-setup: ready (agent uid 1000 gid 1000, network as prepared)\n") ==
        ReadyCheck::Agent);
  CHECK(claim_wait_from(r, "sshd-restarted\nagent-vm-setup: ready\n") == ReadyCheck::Ssh);
  CHECK(claim_wait_from(r, "agent-vm-setup: ready\nsshd-restarted") == ReadyCheck::Ssh);
  CHECK(claim_wait_from(r, "not sshd-restarted\n") == ReadyCheck::Agent);  // a whole line only
}

TEST_CASE("slot records and the pool configuration survive a round trip and broken ones are refused", "[pool]") {
  SlotRecord r = record(SlotRecord::State::Ready);
  r.ssh_port = 2300;
  r.start_time = 99;
  r.accel = "tcg";
  r.owner_pid = 12;
  r.owner_start = 34;
  r.shape = small();
  SlotRecord back = parse_slot(format_slot(r));
  CHECK(back.id == r.id);
  CHECK(back.state == r.state);
  CHECK(back.pid == r.pid);
  CHECK(back.ssh_port == 2300);
  CHECK(back.shape == small());
  CHECK(back.owner_start == 34);
  CHECK_FALSE(back.agent_waits);  // a record from before the field: the agent starts at the claim
  r.agent_waits = true;
  CHECK(parse_slot(format_slot(r)).agent_waits);
  r.pid.reset();
  CHECK_FALSE(parse_slot(format_slot(r)).pid);
  for (auto st : {SlotRecord::State::Booting, SlotRecord::State::Taken}) {
    r.state = st;
    CHECK(parse_slot(format_slot(r)).state == st);
  }

  PoolConfig c;
  c.size = 3;
  c.shape = small();
  PoolConfig cb = parse_pool_config(format_pool_config(c));
  CHECK(cb.size == 3);
  CHECK(cb.shape == small());

  CHECK_THROWS_AS(parse_slot("{"), avm::Error);
  CHECK_THROWS_AS(parse_slot(R"({"id":"../x"})"), avm::Error);
  CHECK_THROWS_AS(parse_pool_config(R"({"size":-1})"), avm::Error);
}

TEST_CASE("an abandoned resume's take gives the session's files back, a spawn's is discarded", "[pool]") {
  SlotRecord spawn = record(SlotRecord::State::Taken);
  SlotRecord resume = spawn;
  resume.resuming = "s3ss10";
  CHECK(recover_take(seen(resume, true, true)) == TakeRecovery::Keep);
  CHECK(recover_take(seen(spawn, true, true)) == TakeRecovery::Keep);
  CHECK(recover_take(seen(resume, false, true)) == TakeRecovery::HandBack);
  CHECK(recover_take(seen(resume, false, false)) == TakeRecovery::HandBack);
  CHECK(recover_take(seen(spawn, false, true)) == TakeRecovery::Discard);
  CHECK(recover_take(seen(std::nullopt, false, false)) == TakeRecovery::Discard);
  // A record that does not say taken was never a resume's: nothing of a
  // session can be in it.
  SlotRecord ready = record(SlotRecord::State::Ready);
  ready.resuming = "s3ss10";
  CHECK(recover_take(seen(ready, true, true)) == TakeRecovery::Discard);
}

TEST_CASE("a take's record names the session a resume moves into it", "[pool]") {
  SlotRecord r = record(SlotRecord::State::Taken);
  CHECK(parse_slot(format_slot(r)).resuming.empty());
  r.resuming = "s3ss10";
  CHECK(parse_slot(format_slot(r)).resuming == "s3ss10");
  r.resuming = "../up";
  CHECK_THROWS_AS(parse_slot(format_slot(r)), avm::Error);
}
