#include "sessions/meta.h"

#include <ctime>

#include <boost/json.hpp>
#include <limits>

#include "launcher/vm_spec.h"
#include "qmp/fields.h"
#include "util/file.h"

namespace avm::sessions {

namespace json = boost::json;
namespace L = avm::launcher;

namespace {

constexpr std::pair<StopHow, std::string_view> kStopHows[] = {
    {StopHow::GuestPoweroff, "guest-poweroff"}, {StopHow::Quit, "quit"},
    {StopHow::Sigterm, "sigterm"},              {StopHow::Sigkill, "sigkill"},
    {StopHow::Crash, "crash"},                  {StopHow::BootFailed, "boot-failed"},
};

constexpr std::pair<Intent, std::string_view> kIntents[] = {
    {Intent::Creating, "creating"},
    {Intent::Running, "running"},
    {Intent::Stopped, "stopped"},
    {Intent::Failed, "failed"},
};

// Typed, checked access to one JSON object; every failure is MetaCorrupt
// naming the field by its path ("history[1].how").
class Fields {
 public:
  Fields(const json::value& v, std::string where) : where_(std::move(where)) {
    obj_ = v.if_object();
    if (!obj_) fail(where_.empty() ? "top level" : where_, "an object", v);
  }

  const json::value* find(std::string_view key) const {
    auto it = obj_->find(key);
    return it == obj_->end() ? nullptr : &it->value();
  }
  const json::value& need(std::string_view key) const {
    const json::value* v = find(key);
    if (!v) throw MetaCorrupt("missing field '" + name(key) + "'");
    return *v;
  }
  std::string str(std::string_view key) const { return as_str(need(key), key); }
  std::optional<std::string> opt_str(std::string_view key) const {
    const json::value* v = find(key);
    if (!v || v->is_null()) return std::nullopt;
    return as_str(*v, key);
  }
  template <class T>
  T num(std::string_view key, T min = std::numeric_limits<T>::min(),
        T max = std::numeric_limits<T>::max()) const {
    return as_num<T>(need(key), key, min, max);
  }
  template <class T>
  std::optional<T> opt_num(std::string_view key, T min = std::numeric_limits<T>::min(),
                           T max = std::numeric_limits<T>::max()) const {
    const json::value* v = find(key);
    if (!v || v->is_null()) return std::nullopt;
    return as_num<T>(*v, key, min, max);
  }
  const json::array& arr(std::string_view key) const {
    const json::value& v = need(key);
    if (!v.is_array()) fail(name(key), "an array", v);
    return v.get_array();
  }
  std::string name(std::string_view key) const {
    return where_.empty() ? std::string(key) : where_ + "." + std::string(key);
  }

  [[noreturn]] static void fail(const std::string& field, std::string_view want,
                                const json::value& got) {
    throw MetaCorrupt("'" + field + "' should be " + std::string(want) + ", not " +
                      qmp::kind_name(got));
  }

 private:
  std::string as_str(const json::value& v, std::string_view key) const {
    if (!v.is_string()) fail(name(key), "a string", v);
    const auto& s = v.get_string();
    return std::string(s.data(), s.size());
  }
  template <class T>
  T as_num(const json::value& v, std::string_view key, T min, T max) const {
    if (!v.is_int64() && !v.is_uint64()) fail(name(key), "an integer", v);
    json::error_code ec;
    T n = v.to_number<T>(ec);
    if (ec || n < min || n > max)
      throw MetaCorrupt("'" + name(key) + "' is out of range (" +
                        json::serialize(v) + ")");
    return n;
  }

  const json::object* obj_ = nullptr;
  std::string where_;
};

RunRecord run_record_from(const json::value& jv, const std::string& where) {
  Fields f(jv, where);
  RunRecord r;
  r.started = f.str("started");
  r.stopped = f.opt_str("stopped");
  if (auto how = f.opt_str("how")) {
    r.how = stop_how_from_string(*how);
    if (!r.how) throw MetaCorrupt("'" + f.name("how") + "' is unknown: \"" + *how + "\"");
  }
  if (auto d = f.opt_str("detail")) r.detail = *d;
  return r;
}

Meta meta_from(const json::value& jv) {
  Fields f(jv, "");
  // The schema first: a newer file may have changed everything else.
  const json::value& schema = f.need("schema");
  if (!schema.is_int64() && !schema.is_uint64()) Fields::fail("schema", "an integer", schema);
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
  m.cpus = f.num<unsigned>("cpus", L::kMinCpus, L::kMaxCpus);
  m.memory_mib = f.num<unsigned>("memory_mib", L::kMinMemoryMib);
  m.ssh_port = f.num<std::uint16_t>("ssh_port");
  m.net = f.str("net");

  if (const json::value* q = f.find("qemu"); q && !q->is_null()) {
    Fields qf(*q, "qemu");
    m.qemu_pid = qf.num<pid_t>("pid", 1);
    m.qemu_start_time = qf.opt_num<unsigned long long>("start_time");
  }

  if (const json::value* a = f.find("agent_command"); a && !a->is_null()) {
    if (!a->is_array()) Fields::fail("agent_command", "an array of strings", *a);
    std::vector<std::string> argv;
    for (const auto& e : a->get_array()) {
      if (!e.is_string()) Fields::fail("agent_command[]", "a string", e);
      argv.emplace_back(e.get_string().data(), e.get_string().size());
    }
    m.agent_command = std::move(argv);
  }

  if (const json::value* a = f.find("allow_hosts"); a && !a->is_null()) {
    if (!a->is_array()) Fields::fail("allow_hosts", "an array of strings", *a);
    for (const auto& e : a->get_array()) {
      if (!e.is_string()) Fields::fail("allow_hosts[]", "a string", e);
      m.allow_hosts.emplace_back(e.get_string().data(), e.get_string().size());
    }
  }

  Fields status(f.need("status"), "status");
  std::string intent = status.str("intent");
  auto in = intent_from_string(intent);
  if (!in) throw MetaCorrupt("'status.intent' is unknown: \"" + intent + "\"");
  m.intent = *in;
  m.intent_reason = status.opt_str("reason").value_or("");

  const json::array& hist = f.arr("history");
  for (std::size_t i = 0; i < hist.size(); ++i)
    m.history.push_back(run_record_from(hist[i], "history[" + std::to_string(i) + "]"));
  return m;
}

void pretty(std::string& out, const json::value& v, int indent) {
  auto pad = [&](int n) { out.append(static_cast<std::size_t>(n) * 2, ' '); };
  switch (v.kind()) {
    case json::kind::object: {
      const auto& o = v.get_object();
      if (o.empty()) {
        out += "{}";
        return;
      }
      out += "{\n";
      bool first = true;
      for (const auto& kv : o) {
        if (!first) out += ",\n";
        first = false;
        pad(indent + 1);
        out += json::serialize(json::value(kv.key()));
        out += ": ";
        pretty(out, kv.value(), indent + 1);
      }
      out += "\n";
      pad(indent);
      out += "}";
      return;
    }
    case json::kind::array: {
      const auto& a = v.get_array();
      if (a.empty()) {
        out += "[]";
        return;
      }
      out += "[\n";
      for (std::size_t i = 0; i < a.size(); ++i) {
        if (i) out += ",\n";
        pad(indent + 1);
        pretty(out, a[i], indent + 1);
      }
      out += "\n";
      pad(indent);
      out += "]";
      return;
    }
    default:
      out += json::serialize(v);
  }
}

}  // namespace

std::string_view to_string(StopHow how) {
  for (auto& [h, s] : kStopHows)
    if (h == how) return s;
  return "unknown";
}

std::optional<StopHow> stop_how_from_string(std::string_view s) {
  for (auto& [h, name] : kStopHows)
    if (name == s) return h;
  return std::nullopt;
}

std::string_view to_string(Intent intent) {
  for (auto& [i, s] : kIntents)
    if (i == intent) return s;
  return "unknown";
}

std::optional<Intent> intent_from_string(std::string_view s) {
  for (auto& [i, name] : kIntents)
    if (name == s) return i;
  return std::nullopt;
}

MetaCorrupt::MetaCorrupt(const std::string& reason)
    : Error("meta.json is corrupt: " + reason,
            "inspect or remove the session (agent-vm rm); other sessions are unaffected"),
      reason_(reason) {}

MetaUnknownSchema::MetaUnknownSchema(long long found)
    : Error("meta.json has schema version " + std::to_string(found) + "; this agent-vm reads version " +
                std::to_string(kMetaSchema),
            "use the agent-vm release that created this session"),
      found_(found) {}

void tag_invoke(const json::value_from_tag&, json::value& jv, const RunRecord& r) {
  json::object o;
  o["started"] = r.started;
  o["stopped"] = r.stopped ? json::value(*r.stopped) : json::value(nullptr);
  o["how"] = r.how ? json::value(to_string(*r.how)) : json::value(nullptr);
  o["detail"] = r.detail;
  jv = std::move(o);
}

RunRecord tag_invoke(const json::value_to_tag<RunRecord>&, const json::value& jv) {
  return run_record_from(jv, "history[]");
}

void tag_invoke(const json::value_from_tag&, json::value& jv, const Meta& m) {
  json::object o;
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
  json::array allow;
  for (const auto& h : m.allow_hosts) allow.emplace_back(h);
  o["allow_hosts"] = std::move(allow);
  if (m.qemu_pid) {
    json::object q;
    q["pid"] = *m.qemu_pid;
    q["start_time"] = m.qemu_start_time ? json::value(*m.qemu_start_time) : json::value(nullptr);
    o["qemu"] = std::move(q);
  } else {
    o["qemu"] = nullptr;
  }
  if (m.agent_command) {
    json::array a;
    for (const auto& s : *m.agent_command) a.emplace_back(s);
    o["agent_command"] = std::move(a);
  } else {
    o["agent_command"] = nullptr;
  }
  json::object status;
  status["intent"] = to_string(m.intent);
  status["reason"] = m.intent_reason;
  o["status"] = std::move(status);
  json::array hist;
  for (const auto& r : m.history) hist.push_back(json::value_from(r));
  o["history"] = std::move(hist);
  jv = std::move(o);
}

Meta tag_invoke(const json::value_to_tag<Meta>&, const json::value& jv) { return meta_from(jv); }

Meta parse_meta(std::string_view text) {
  json::error_code ec;
  json::parse_options opts;
  opts.max_depth = 16;  // meta.json is shallow; a deep nest is garbage
  json::value v = json::parse(json::string_view(text.data(), text.size()), ec, {}, opts);
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

std::string format_meta(const Meta& meta) {
  std::string out;
  pretty(out, json::value_from(meta), 0);
  out += "\n";
  return out;
}

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

std::string utc_now_iso8601() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace avm::sessions
