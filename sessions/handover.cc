#include "sessions/handover.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>

#include "util/error.h"
#include "util/file.h"
#include "util/remove_tree.h"

namespace avm::sessions {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kMeta = "meta.json";
constexpr std::string_view kRun = "run";
constexpr const char* kConsole = "run/console.log";
constexpr const char* kPreviousConsole = "run/console.log.1";

bool contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// Sorted, with meta.json last.
void order(std::vector<EntryMove>& moves) {
  std::sort(moves.begin(), moves.end(), [](const EntryMove& a, const EntryMove& b) {
    bool am = a.from == kMeta, bm = b.from == kMeta;
    if (am != bm) return bm;
    return a.from < b.from;
  });
}

bool is_regular_nofollow(const fs::path& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

void apply(const fs::path& from, const fs::path& to, const std::vector<EntryMove>& moves) {
  for (const auto& m : moves) {
    fs::path src = from / m.from, dst = to / m.to;
    remove_tree(dst);
    if (::rename(src.c_str(), dst.c_str()) != 0) throw_errno("cannot move " + src.string() + " to " + dst.string());
  }
}

}  // namespace

bool belongs_to_vm(std::string_view entry) { return entry == kRun || entry == kPoolSlotMarker; }

std::vector<EntryMove> plan_hand_over(const std::vector<std::string>& session_entries, bool has_console) {
  std::vector<EntryMove> out;
  for (const auto& e : session_entries)
    if (!belongs_to_vm(e)) out.push_back({e, e});
  order(out);
  if (has_console) out.push_back({kConsole, kPreviousConsole});
  return out;
}

std::vector<EntryMove> plan_hand_back(const std::vector<std::string>& share_entries,
                                      const std::vector<std::string>& session_entries, bool share_has_previous_console,
                                      bool session_has_console) {
  std::vector<EntryMove> out;
  for (const auto& e : share_entries)
    if (!belongs_to_vm(e) && !contains(session_entries, e)) out.push_back({e, e});
  order(out);
  if (share_has_previous_console && !session_has_console && contains(session_entries, std::string(kRun)))
    out.push_back({kPreviousConsole, kConsole});
  return out;
}

std::vector<std::string> folder_entries(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

void hand_over(const fs::path& session_dir, const fs::path& share) {
  apply(session_dir, share,
        plan_hand_over(folder_entries(session_dir), is_regular_nofollow(session_dir / kConsole)));
}

void hand_back(const fs::path& share, const fs::path& session_dir) {
  struct stat st {};
  if (::lstat(session_dir.c_str(), &st) != 0) make_private_dir(session_dir);
  apply(share, session_dir,
        plan_hand_back(folder_entries(share), folder_entries(session_dir),
                       is_regular_nofollow(share / kPreviousConsole), is_regular_nofollow(session_dir / kConsole)));
}

}  // namespace avm::sessions
