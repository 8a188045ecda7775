#include "qmp/qga_types.h"

#include <climits>

#include "qmp/errors.h"
#include "util/base64.h"

namespace avm::qmp {

namespace json = boost::json;

bool GuestInfo::supports(std::string_view command) const {
  for (const auto& c : supported_commands)
    if (c.name == command) return c.enabled;
  return false;
}

GuestInfo tag_invoke(json::value_to_tag<GuestInfo>, const json::value& v) {
  auto f = fields(v, "reply");
  GuestInfo g;
  g.version = f.str("version");
  for (const auto& cf : f.arr("supported_commands").objects()) {
    g.supported_commands.push_back(
        {cf.str("name"), cf.boolean("enabled"), cf.opt_bool("success-response").value_or(true)});
  }
  return g;
}

OsInfo tag_invoke(json::value_to_tag<OsInfo>, const json::value& v) {
  auto f = fields(v, "reply");
  OsInfo o;
  o.id = f.opt_str("id");
  o.name = f.opt_str("name");
  o.pretty_name = f.opt_str("pretty-name");
  o.version = f.opt_str("version");
  o.version_id = f.opt_str("version-id");
  o.variant = f.opt_str("variant");
  o.variant_id = f.opt_str("variant-id");
  o.kernel_release = f.opt_str("kernel-release");
  o.kernel_version = f.opt_str("kernel-version");
  o.machine = f.opt_str("machine");
  return o;
}

void tag_invoke(json::value_from_tag, json::value& v, const GuestExecArgs& a) {
  json::object o;
  o["path"] = a.path;
  if (!a.args.empty()) o["arg"] = json::value_from(a.args);
  if (!a.env.empty()) o["env"] = json::value_from(a.env);
  if (a.input) o["input-data"] = base64_encode(*a.input);
  o["capture-output"] = a.capture_output;
  v = std::move(o);
}

namespace {

std::string decoded(const avm::json::Fields& f, std::string_view key) {
  auto text = f.opt_str(key);
  if (!text) return {};
  auto bytes = base64_decode(*text);
  if (!bytes) throw ProtocolError("reply: '" + std::string(key) + "' is not valid base64");
  return *bytes;
}

}  // namespace

ExecStatus tag_invoke(json::value_to_tag<ExecStatus>, const json::value& v) {
  auto f = fields(v, "reply");
  ExecStatus s;
  s.exited = f.boolean("exited");
  // Ranges checked, not cast: a wrapped exit code would report another
  // outcome, and a signal beyond 127 would overflow 128+N in exec_result
  // (a Linux wait status carries 7 bits of signal).
  s.exit_code = f.opt_integer<int>("exitcode");
  s.signal = f.opt_integer<int>("signal", 1, 127);
  s.out = decoded(f, "out-data");
  s.err = decoded(f, "err-data");
  s.out_truncated = f.opt_bool("out-truncated").value_or(false);
  s.err_truncated = f.opt_bool("err-truncated").value_or(false);
  return s;
}

ExecResult exec_result(ExecStatus s) {
  ExecResult r;
  r.signal = s.signal;
  r.exit_code = s.exit_code ? *s.exit_code : (s.signal ? 128 + *s.signal : -1);
  r.out = std::move(s.out);
  r.err = std::move(s.err);
  r.out_truncated = s.out_truncated;
  r.err_truncated = s.err_truncated;
  return r;
}

}  // namespace avm::qmp
