// Which entries of a session move into a warm VM's share, and how a move cut
// short at any point is undone: the plans alone, then on real folders.
#include "sessions/handover.h"

#include <catch2/catch.hpp>
#include <map>

#include "util/file.h"
#include "util/temp_dir.h"

using namespace avm::sessions;
namespace fs = std::filesystem;
using V = std::vector<std::string>;
using M = std::vector<EntryMove>;

namespace {

// Every file below `dir` (relative path -> content); folders as "<dir>".
std::map<std::string, std::string> tree(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    std::string rel = fs::relative(e.path(), dir).string();
    out[rel] = e.is_directory() ? "<dir>" : avm::read_file(e.path());
  }
  return out;
}

// A stopped session's folder, and a warm-pool VM's share as the pool makes it.
void make_session(const fs::path& s) {
  fs::create_directories(s / "repo" / ".git");
  fs::create_directories(s / "ssh");
  fs::create_directories(s / "opencode" / ".agent-vm");
  fs::create_directories(s / "run");
  avm::write_file_atomic(s / "meta.json", "{\"id\":\"k3f9ab\"}", 0600);
  avm::write_file_atomic(s / "repo" / "README", "hello", 0600);
  avm::write_file_atomic(s / "ssh" / "id_ed25519", "client key", 0600);
  avm::write_file_atomic(s / "opencode" / ".agent-vm" / "started", "2026", 0600);
  avm::write_file_atomic(s / "env", "A=1\n", 0600);
  avm::write_file_atomic(s / "followup.txt", "next", 0600);
  avm::write_file_atomic(s / "run" / "console.log", "old boot", 0600);
  avm::write_file_atomic(s / "run" / "qemu.log", "old qemu", 0600);
}
void make_share(const fs::path& t) {
  fs::create_directories(t / "ssh");
  fs::create_directories(t / "run");
  avm::write_file_atomic(t / "run" / "console.log", "warm boot", 0600);
  avm::write_file_atomic(t / "run" / "qmp.sock", "socket", 0600);
  avm::write_file_atomic(t / std::string(kPoolSlotMarker), "marker", 0600);
}

}  // namespace

TEST_CASE("run/ and the pool-slot marker are the VM's, everything else is the session's", "[handover]") {
  CHECK(belongs_to_vm("run"));
  CHECK(belongs_to_vm("pool-slot"));
  for (const char* e : {"meta.json", "repo", "ssh", "env", "prompt.txt", "followup.txt", "agent-cmd", "opencode",
                        "notes-the-agent-left", "run.txt"})
    CHECK_FALSE(belongs_to_vm(e));
}

TEST_CASE("a hand-over moves all but the VM's entries, meta.json last, then the old console", "[handover]") {
  CHECK(plan_hand_over({"env", "meta.json", "pool-slot", "repo", "run", "ssh"}, true) ==
        M{{"env", "env"}, {"repo", "repo"}, {"ssh", "ssh"}, {"meta.json", "meta.json"},
          {"run/console.log", "run/console.log.1"}});
  CHECK(plan_hand_over({"meta.json", "run"}, false) == M{{"meta.json", "meta.json"}});
  CHECK(plan_hand_over({}, false).empty());
}

TEST_CASE("a hand-back returns what moved and leaves the slot's own namesakes", "[handover]") {
  SECTION("nothing moved yet: the slot's empty ssh/ stays with the slot") {
    CHECK(plan_hand_back({"pool-slot", "run", "ssh"}, {"env", "meta.json", "repo", "run", "ssh"}, false, true).empty());
  }
  SECTION("halfway: what is missing from the session goes back, meta.json last") {
    CHECK(plan_hand_back({"env", "meta.json", "pool-slot", "repo", "run", "ssh"}, {"run", "ssh"}, false, true) ==
          M{{"env", "env"}, {"repo", "repo"}, {"meta.json", "meta.json"}});
  }
  SECTION("all moved, the console too") {
    CHECK(plan_hand_back({"meta.json", "run", "ssh"}, {"run"}, true, false) ==
          M{{"ssh", "ssh"}, {"meta.json", "meta.json"}, {"run/console.log.1", "run/console.log"}});
  }
  SECTION("the session's folder already put aside: it is made again, without a run/ for the console") {
    CHECK(plan_hand_back({"meta.json", "repo", "run"}, {}, true, false) ==
          M{{"repo", "repo"}, {"meta.json", "meta.json"}});
  }
}

TEST_CASE("a hand-over cut short after any rename is undone by a hand-back, and nothing is lost",
          "[handover]") {
  avm::TempDir tmp;
  fs::path s0 = tmp.path() / "original";
  make_session(s0);
  auto want = tree(s0);
  V entries = folder_entries(s0);
  M plan = plan_hand_over(entries, true);
  REQUIRE(plan.size() == 7);
  // Cut after k renames, for every k; and with the session folder gone
  // (moved aside just before the share would have taken its place).
  for (size_t k = 0; k <= plan.size() + 1; ++k) {
    DYNAMIC_SECTION("cut after " << k << " renames") {
      fs::path s = tmp.path() / (std::to_string(k) + "-session"), t = tmp.path() / (std::to_string(k) + "-share");
      fs::copy(s0, s, fs::copy_options::recursive);
      make_share(t);
      for (size_t i = 0; i < k && i < plan.size(); ++i) {
        fs::remove_all(t / plan[i].to);
        fs::rename(s / plan[i].from, t / plan[i].to);
      }
      if (k == plan.size() + 1) fs::remove_all(s);
      hand_back(t, s);
      auto got = tree(s);
      if (k == plan.size() + 1) {
        // Only the old boot's run/ is gone with the folder: its console and
        // QEMU's log; the session's files are all back.
        for (auto it = want.begin(); it != want.end();)
          it = it->first.rfind("run", 0) == 0 ? want.erase(it) : std::next(it);
      }
      CHECK(got == want);
      // The share is left with what is the VM's.
      CHECK(fs::exists(t / "run" / "qmp.sock"));
      CHECK(fs::exists(t / std::string(kPoolSlotMarker)));
      // Again: nothing more to do.
      hand_back(t, s);
      CHECK(tree(s) == got);
      want = tree(s0);
    }
  }
}

TEST_CASE("a whole hand-over leaves the session's files in the share beside the VM's run/", "[handover]") {
  avm::TempDir tmp;
  fs::path s = tmp.path() / "s", t = tmp.path() / "t";
  make_session(s);
  make_share(t);
  hand_over(s, t);
  CHECK(folder_entries(s) == V{"run"});
  CHECK(avm::read_file(t / "repo" / "README") == "hello");
  CHECK(avm::read_file(t / "ssh" / "id_ed25519") == "client key");
  CHECK(avm::read_file(t / "run" / "console.log") == "warm boot");
  CHECK(avm::read_file(t / "run" / "console.log.1") == "old boot");
  CHECK(avm::read_file(t / "run" / "qmp.sock") == "socket");
  CHECK(fs::exists(t / std::string(kPoolSlotMarker)));
}
