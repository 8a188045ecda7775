#include "transcript.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <fstream>
#include <map>
#include <stdexcept>

namespace avm::qmp::test {

namespace json = boost::json;

namespace {

std::string unhex(const std::string& hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
    out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  return out;
}

}  // namespace

Transcript Transcript::load(const std::string& file) {
  std::string path = std::string(AGENT_VM_TEST_FIXTURES) + "/qmp/" + file;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  Transcript t;
  t.name = file;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (line == "@eol crlf") { t.eol = "\r\n"; continue; }
    if (line == "@eol lf") { t.eol.assign(1, '\n'); continue; }
    if (line == "@close") { t.steps.push_back({Step::Kind::Close, {}, {}}); continue; }
    auto sp = line.find(' ');
    std::string tag = line.substr(0, sp), rest = sp == std::string::npos ? "" : line.substr(sp + 1);
    if (tag == "C") t.steps.push_back({Step::Kind::Client, rest, json::parse(rest)});
    else if (tag == "S") t.steps.push_back({Step::Kind::Server, rest, json::parse(rest)});
    else if (tag == "C!") t.steps.push_back({Step::Kind::ClientRaw, unhex(rest), {}});
    else if (tag == "S!") t.steps.push_back({Step::Kind::ServerRaw, unhex(rest), {}});
    else throw std::runtime_error(path + ": unknown directive: " + line.substr(0, 40));
  }
  return t;
}

json::value Transcript::reply_to(const std::string& command, int nth) const {
  const json::value* id = nullptr;
  int seen = 0;
  for (const auto& s : steps) {
    if (s.kind == Step::Kind::Client && s.json.as_object().at("execute").as_string() == command &&
        seen++ == nth)
      id = s.json.as_object().if_contains("id");
    else if (id && s.kind == Step::Kind::Server) {
      const auto& o = s.json.as_object();
      if (auto* rid = o.if_contains("id"); rid && *rid == *id) return s.json;
    }
  }
  throw std::runtime_error(name + ": no reply to " + command);
}

std::vector<json::value> Transcript::events() const {
  std::vector<json::value> out;
  for (const auto& s : steps)
    if (s.kind == Step::Kind::Server && s.json.as_object().contains("event")) out.push_back(s.json);
  return out;
}

const Step& Transcript::greeting() const {
  for (const auto& s : steps)
    if (s.kind == Step::Kind::Server && s.json.as_object().contains("QMP")) return s;
  throw std::runtime_error(name + ": no greeting");
}

void replay(FakeConn& conn, const Transcript& t, const ReplayOptions& opts) {
  std::map<std::string, json::value> ids;  // recorded id (serialized) -> the client's
  std::map<std::string, json::value> sync_ids;
  std::string burst;
  std::size_t answered = 0;
  auto flush = [&] {
    if (burst.empty()) return;
    if (opts.split) conn.send_split(burst, opts.split);
    else conn.send(burst);
    burst.clear();
  };
  auto out = [&](const std::string& bytes) {
    burst += bytes;
    if (!opts.merge) flush();
  };
  bool seen_request = false;
  for (const auto& s : t.steps) {
    switch (s.kind) {
      case Step::Kind::Client: {
        flush();
        if (seen_request && ++answered >= opts.stop_after_requests) return;
        seen_request = true;
        const auto& want = s.json.as_object();
        json::object got = conn.expect(want.at("execute").as_string());
        const json::value* want_args = want.if_contains("arguments");
        const json::value* got_args = got.if_contains("arguments");
        if (want.at("execute") == "guest-sync-delimited") {
          sync_ids[json::serialize(want_args->at("id"))] = got_args->at("id");
        } else if (want_args && want_args->as_object().contains("pid")) {
          // guest-exec pids come from the reply; the client echoes ours.
        } else if ((want_args == nullptr) != (got_args == nullptr) ||
                   (want_args && *want_args != *got_args)) {
          throw std::runtime_error("'" + std::string(want.at("execute").as_string()) +
                                   "' sent with arguments " + (got_args ? json::serialize(*got_args) : "none") +
                                   ", recorded " + (want_args ? json::serialize(*want_args) : "none"));
        }
        if (auto* id = want.if_contains("id")) {
          auto* gid = got.if_contains("id");
          ids[json::serialize(*id)] = gid ? *gid : json::value();
        }
        break;
      }
      case Step::Kind::ClientRaw:
        flush();
        conn.expect_sentinel();
        break;
      case Step::Kind::Server: {
        json::value v = s.json;
        auto& o = v.as_object();
        if (auto* id = o.if_contains("id")) {
          auto it = ids.find(json::serialize(*id));
          if (it != ids.end()) {
            if (it->second.is_null()) o.erase("id");
            else *id = it->second;
          }
        }
        if (auto* r = o.if_contains("return")) {
          auto it = sync_ids.find(json::serialize(*r));
          if (it != sync_ids.end()) *r = it->second;
        }
        // Keep the recorded bytes when nothing changed (QEMU's spacing).
        out((v == s.json ? s.text : json::serialize(v)) + t.eol);
        break;
      }
      case Step::Kind::ServerRaw:
        out(s.text);
        break;
      case Step::Kind::Close:
        flush();
        conn.close();
        return;
    }
  }
  flush();
}

}  // namespace avm::qmp::test
