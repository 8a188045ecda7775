#include "sessions/journal.h"

#include <catch2/catch.hpp>

using namespace avm::sessions;

TEST_CASE("the journal alone writes the history", "[journal]") {
  Meta m;
  m.id = "j1";
  m.intent = Intent::Running;
  begin_run(m, "t0");
  m.qemu_pid = 7;
  CHECK(has_dangling_run(m));
  Meta fresh;
  CHECK_FALSE(close_dangling_run(fresh, false, "t1"));
  CHECK(fresh.history.empty());
  end_run(m, StopHow::Quit, "quit (1s)", "t1");
  CHECK(m.history == std::vector<RunRecord>{{"t0", "t1", StopHow::Quit, "quit (1s)"}});
  CHECK_FALSE(m.qemu_pid.has_value());
  CHECK_FALSE(close_dangling_run(m, true, "t2"));
  // A stop of a run nobody recorded records one.
  Meta older;
  end_run(older, StopHow::Sigkill, "killed", "t3");
  CHECK(older.history == std::vector<RunRecord>{{"t3", "t3", StopHow::Sigkill, "killed"}});
  // Dangling runs are closed from the console's last words.
  begin_run(m, "t4");
  CHECK(close_dangling_run(m, true, "t5"));
  CHECK(m.history.back() == RunRecord{"t4", "t5", StopHow::GuestPoweroff, "the guest powered off by itself"});
  CHECK(m.intent == Intent::Stopped);
  begin_run(m, "t6");
  CHECK(close_dangling_run(m, false, "t7"));
  CHECK(m.history.back() == RunRecord{"t6", "t7", StopHow::Crash, "QEMU exited without being asked"});
}
