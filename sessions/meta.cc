#include "sessions/meta.h"


#include <boost/json.hpp>
#include <limits>

#include "json/enum_table.h"
#include "json/fields.h"
#include "json/text.h"
#include "launcher/vm_spec.h"
#include "sessions/ids.h"
#include "util/file.h"

namespace avm::sessions {

namespace bj = boost::json;
namespace L = avm::launcher;

namespace {

constexpr auto kStopHows = json::enum_table<StopHow>({
    {StopHow::GuestPoweroff, "guest-poweroff"}, {StopHow::Quit, "quit"},
    {StopHow::Sigterm, "sigterm"},              {StopHow::Sigkill, "sigkill"},
    {StopHow::Crash, "crash"},                  {StopHow::BootFailed, "boot-failed"},
});
static_assert(kStopHows.unique());

constexpr auto kIntents = json::enum_table<Intent>({
    {Intent::Creating, "creating"},
    {Intent::Running, "running"},
    {Intent::Stopped, "stopped"},
    {Intent::Failed, "failed"},
});
static_assert(kIntents.unique());

// meta.json's one translation of a field error: MetaCorrupt naming the
// field by its path ("missing field 'history[1].started'").
[[noreturn]] void raise_corrupt(const json::FieldError& e) {
  using Problem = json::FieldError::Problem;
  std::string field = e.path().empty() ? "top level" : e.path();
  switch (e.problem()) {
    case Problem::Missing: throw MetaCorrupt("missing field '" + field + "'");
    case Problem::WrongKind:
      throw MetaCorrupt("'" + field + "' should be " + e.expected() + ", not " + e.found());
    case Problem::OutOfRange:
    case Problem::Unknown: throw MetaCorrupt("'" + field + "' " + e.reason());
  }
  throw MetaCorrupt(e.what());
}

// A null field is the same as an absent one (older files wrote either).
constexpr json::Policy kMetaPolicy{json::Null::Absent, &raise_corrupt};

RunRecord run_record_from(const json::Fields& f) {
  RunRecord r;
  r.started = f.str("started");
  r.stopped = f.opt_str("stopped");
  r.how = f.opt_enumerated("how", kStopHows);
  r.detail = f.opt_str("detail").value_or("");
  return r;
}

Meta meta_from(const bj::value& jv) {
  json::Fields f(jv, "", kMetaPolicy);
  // The schema first: a newer file may have changed everything else.
  const bj::value& schema = f.value("schema");
  if (!schema.is_int64() && !schema.is_uint64()) f.wrong_kind("schema", "an integer", schema);
  if (!schema.is_int64() || schema.get_int64() != kMetaSchema) {
    long long found = schema.is_int64() ? schema.get_int64()
                                        : std::numeric_limits<long long>::max();
    throw MetaUnknownSchema(found);
  }

  Meta m;
  m.schema = kMetaSchema;
  m.id = f.str("id");
  m.repo_url = f.str("repo");
  m.ref = f.str("ref");
  m.checked_out = f.str("checked_out");
  m.commit = f.str("commit");
  m.created = f.str("created");
  m.image = f.str("image");
  m.accelerator = f.str("accelerator");
  // What a VmSpec accepts: a session that could never boot is not a session.
  m.cpus = f.integer<unsigned>("cpus", L::kMinCpus, L::kMaxCpus);
  m.memory_mib = f.integer<unsigned>("memory_mib", L::kMinMemoryMib);
  m.ssh_port = f.integer<std::uint16_t>("ssh_port");
  m.net = f.str("net");

  if (auto q = f.opt_obj("qemu")) {
    m.qemu_pid = q->integer<pid_t>("pid", 1);
    m.qemu_start_time = q->opt_integer<unsigned long long>("start_time");
    m.vm_id = q->opt_str("vm_id");
    if (m.vm_id && !is_valid_id(*m.vm_id)) throw MetaCorrupt("qemu.vm_id '" + *m.vm_id + "' is not an id");
  }
  m.agent_command = f.opt_strings("agent_command");
  m.allow_hosts = f.opt_strings("allow_hosts").value_or(std::vector<std::string>{});

  json::Fields status = f.obj("status");
  m.intent = status.enumerated("intent", kIntents);
  m.intent_reason = status.opt_str("reason").value_or("");

  for (const auto& r : f.arr("history").objects()) m.history.push_back(run_record_from(r));
  return m;
}

}  // namespace

std::string_view to_string(StopHow how) { return kStopHows.to_string(how); }

std::optional<StopHow> stop_how_from_string(std::string_view s) { return kStopHows.from_string(s); }

std::string_view to_string(Intent intent) { return kIntents.to_string(intent); }

std::optional<Intent> intent_from_string(std::string_view s) { return kIntents.from_string(s); }

MetaCorrupt::MetaCorrupt(const std::string& reason)
    : Error("meta.json is corrupt: " + reason,
            "inspect or remove the session (agent-vm rm); other sessions are unaffected"),
      reason_(reason) {}

MetaUnknownSchema::MetaUnknownSchema(long long found)
    : Error("meta.json has schema version " + std::to_string(found) + "; this agent-vm reads version " +
                std::to_string(kMetaSchema),
            "use the agent-vm release that created this session"),
      found_(found) {}

void tag_invoke(const bj::value_from_tag&, bj::value& jv, const RunRecord& r) {
  bj::object o;
  o["started"] = r.started;
  o["stopped"] = r.stopped ? bj::value(*r.stopped) : bj::value(nullptr);
  o["how"] = r.how ? bj::value(to_string(*r.how)) : bj::value(nullptr);
  o["detail"] = r.detail;
  jv = std::move(o);
}

RunRecord tag_invoke(const bj::value_to_tag<RunRecord>&, const bj::value& jv) {
  return run_record_from(json::Fields(jv, "history[]", kMetaPolicy));
}

void tag_invoke(const bj::value_from_tag&, bj::value& jv, const Meta& m) {
  bj::object o;
  o["schema"] = m.schema;
  o["id"] = m.id;
  o["repo"] = m.repo_url;
  o["ref"] = m.ref;
  o["checked_out"] = m.checked_out;
  o["commit"] = m.commit;
  o["created"] = m.created;
  o["image"] = m.image;
  o["accelerator"] = m.accelerator;
  o["cpus"] = m.cpus;
  o["memory_mib"] = m.memory_mib;
  o["ssh_port"] = m.ssh_port;
  o["net"] = m.net;
  bj::array allow;
  for (const auto& h : m.allow_hosts) allow.emplace_back(h);
  o["allow_hosts"] = std::move(allow);
  if (m.qemu_pid) {
    bj::object q;
    q["pid"] = *m.qemu_pid;
    q["start_time"] = m.qemu_start_time ? bj::value(*m.qemu_start_time) : bj::value(nullptr);
    if (m.vm_id) q["vm_id"] = *m.vm_id;
    o["qemu"] = std::move(q);
  } else {
    o["qemu"] = nullptr;
  }
  if (m.agent_command) {
    bj::array a;
    for (const auto& s : *m.agent_command) a.emplace_back(s);
    o["agent_command"] = std::move(a);
  } else {
    o["agent_command"] = nullptr;
  }
  bj::object status;
  status["intent"] = to_string(m.intent);
  status["reason"] = m.intent_reason;
  o["status"] = std::move(status);
  bj::array hist;
  for (const auto& r : m.history) hist.push_back(bj::value_from(r));
  o["history"] = std::move(hist);
  jv = std::move(o);
}

Meta tag_invoke(const bj::value_to_tag<Meta>&, const bj::value& jv) { return meta_from(jv); }

Meta parse_meta(std::string_view text) {
  bj::error_code ec;
  bj::parse_options opts;
  opts.max_depth = 16;  // meta.json is shallow; a deep nest is garbage
  bj::value v = bj::parse(bj::string_view(text.data(), text.size()), ec, {}, opts);
  if (ec) throw MetaCorrupt("not valid JSON (" + ec.message() + ")");
  try {
    return meta_from(v);
  } catch (const MetaCorrupt&) {
    throw;
  } catch (const MetaUnknownSchema&) {
    throw;
  } catch (const std::exception& e) {
    // Nothing above should throw anything else; if it does, it is still garbage.
    throw MetaCorrupt(e.what());
  }
}

std::string format_meta(const Meta& meta) { return json::pretty_json(bj::value_from(meta)) + "\n"; }

Meta load_meta(const std::filesystem::path& path) {
  std::optional<std::string> text;
  try {
    text = read_file_if_exists(path);
  } catch (const Error& e) {
    throw MetaCorrupt(std::string("cannot read it (") + e.what() + ")");
  }
  if (!text) throw MetaCorrupt("it is missing");
  return parse_meta(*text);
}

}  // namespace avm::sessions
