// The run journal: meta.json's `history`, one RunRecord per start of the
// VM. These functions alone write it. They change a Meta in memory and take
// the time as an argument; the caller saves meta.json under the lock.
#pragma once

#include <string>
#include <string_view>

#include "sessions/meta.h"

namespace avm::sessions {

// A start of the VM: a new open run.
void begin_run(Meta& m, const std::string& now);

// The VM is gone: the open run ends `how`, with `detail`. A run nobody
// recorded (a VM started by an older build) is recorded as ending now. The
// pid QEMU had is forgotten.
void end_run(Meta& m, StopHow how, const std::string& detail, const std::string& now);

// The last run has no end: its VM went away while nobody watched.
bool has_dangling_run(const Meta& m);

// How a dangling run ended, judged from the console's last words: a clean
// power-off by the guest itself, or a crash.
StopHow dangling_end(bool console_shows_poweroff);
std::string_view dangling_detail(bool console_shows_poweroff);

// Closes a dangling run (see dangling_end) and turns a Running intent into
// Stopped. Returns false, changing nothing, when no run dangles.
bool close_dangling_run(Meta& m, bool console_shows_poweroff, const std::string& now);

}  // namespace avm::sessions
