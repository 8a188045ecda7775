#include "sessions/observe.h"

#include <algorithm>
#include <ctime>
#include <future>
#include <vector>

#include "launcher/gateway.h"
#include "launcher/vm.h"
#include "sessions/journal.h"
#include "sessions/lifecycle.h"
#include "sessions/session_vm.h"
#include "util/error.h"

namespace avm::sessions {

namespace L = avm::launcher;
namespace fs = std::filesystem;
using namespace std::chrono;

SessionStatus observe_session(VmDriver& driver, const SessionInfo& info, milliseconds timeout, bool ask_guest) {
  if (info.state != SessionInfo::State::Ok || !info.meta) return classify_corrupt(info.id, info.problem);
  const Meta& m = *info.meta;
  SessionPaths p(info.dir);
  VmSeen seen;
  seen.process_alive = vm_running(driver, m, p);
  if (seen.process_alive) {
    L::ObserveOptions oo;
    oo.timeout = timeout;
    oo.guest = ask_guest;
    seen.observation = driver.observe(vm_handle(m, p), oo);
  } else if (has_dangling_run(m)) {
    seen.console_poweroff = L::console_shows_poweroff(p.console_log());
  }
  SessionStatus s = classify(m, seen);
  // The model gateway's meter and budget, from the host-only folder.
  try {
    L::GatewayFiles gf(p.host);
    L::UsageTotals u = L::load_usage(gf);
    s.input_tokens = u.tokens.input;
    s.output_tokens = u.tokens.output;
    if (fs::exists(gf.config())) s.max_tokens = L::load_gateway_config(gf).max_tokens;
  } catch (const std::exception&) {
  }
  return s;
}

namespace {

long long age_of(const std::string& iso) {
  std::tm tm{};
  if (!strptime(iso.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm)) return 0;
  time_t t = timegm(&tm);
  return std::max<long long>(0, static_cast<long long>(::time(nullptr) - t));
}

}  // namespace

std::vector<SessionStatus> list(const SessionStore& store, milliseconds per_vm_timeout, bool ask_guest) {
  return list(store, default_driver(), per_vm_timeout, ask_guest);
}

std::vector<SessionStatus> list(const SessionStore& store, VmDriver& driver, milliseconds per_vm_timeout,
                                bool ask_guest) {
  std::vector<SessionInfo> infos = store.list();
  std::vector<std::future<SessionStatus>> futures;
  futures.reserve(infos.size());
  // One thread per session: a hung VM costs its own timeout, not the list's.
  for (const auto& info : infos)
    futures.push_back(std::async(std::launch::async, [&driver, &info, per_vm_timeout, ask_guest] {
      return observe_session(driver, info, per_vm_timeout, ask_guest);
    }));
  std::vector<SessionStatus> out;
  for (auto& f : futures) {
    SessionStatus s = f.get();
    s.age_seconds = age_of(s.created);
    out.push_back(std::move(s));
  }
  return out;
}

SessionInfo load_info(const SessionStore& store, const std::string& id) {
  SessionInfo info;
  info.id = id;
  info.dir = store.dir(id);
  try {
    info.meta = store.load(id);
  } catch (const Error& e) {
    info.state = SessionInfo::State::Corrupt;
    info.problem = e.what();
  }
  return info;
}

SessionStatus status(const SessionStore& store, const std::string& id_or_prefix, milliseconds timeout) {
  return status(store, default_driver(), id_or_prefix, timeout);
}

SessionStatus status(const SessionStore& store, VmDriver& driver, const std::string& id_or_prefix,
                     milliseconds timeout) {
  std::string id = store.resolve(id_or_prefix);
  SessionInfo info = load_info(store, id);
  SessionStatus s = observe_session(driver, info, timeout);
  s.age_seconds = age_of(s.created);
  return s;
}

}  // namespace avm::sessions
