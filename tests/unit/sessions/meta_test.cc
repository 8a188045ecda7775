#include "sessions/meta.h"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "util/file.h"
#include "util/temp_dir.h"

using namespace avm::sessions;
namespace json = boost::json;

namespace {

Meta full_meta() {
  Meta m;
  m.id = "k3f9ab";
  m.repo_url = "https://example.invalid/repo.git";
  m.ref = "dev";
  m.checked_out = "dev";
  m.commit = "0123456789abcdef0123456789abcdef01234567";
  m.created = "2024-05-01T12:34:56Z";
  m.image = "debian";
  m.accelerator = "tcg";
  m.cpus = 2;
  m.memory_mib = 2048;
  m.ssh_port = 2222;
  m.qemu_pid = 4121;
  m.qemu_start_time = 123456789ull;
  m.vm_id = "warm01";
  m.agent_command = std::vector<std::string>{"sh", "-c", "echo 'hi there'"};
  m.net = "user";
  m.intent = Intent::Failed;
  m.intent_reason = "boot timed out";
  m.history = {
      {"2024-05-01T12:35:00Z", "2024-05-01T13:00:00Z", StopHow::GuestPoweroff, "power button, 4.2s"},
      {"2024-05-01T14:00:00Z", "2024-05-01T14:01:00Z", StopHow::Sigkill, ""},
      {"2024-05-01T15:00:00Z", std::nullopt, std::nullopt, ""},
  };
  return m;
}

// The JSON of a valid meta, for editing into broken ones.
json::object valid_object() { return json::value_from(full_meta()).as_object(); }

std::string corrupt_reason(const std::string& text) {
  try {
    parse_meta(text);
  } catch (const MetaCorrupt& e) {
    return e.reason();
  }
  FAIL("parse_meta accepted: " << text);
  return {};
}

}  // namespace

TEST_CASE("meta round-trips through JSON with every field", "[meta]") {
  Meta m = full_meta();
  std::string text = format_meta(m);
  CHECK(text.back() == '\n');
  CHECK(parse_meta(text) == m);

  Meta minimal;
  minimal.id = "a";
  minimal.created = "2024-01-01T00:00:00Z";
  CHECK(parse_meta(format_meta(minimal)) == minimal);
  CHECK(json::value_to<Meta>(json::value_from(m)) == m);
}

TEST_CASE("every stop kind and intent has a stable name", "[meta]") {
  for (auto how : {StopHow::GuestPoweroff, StopHow::Quit, StopHow::Sigterm, StopHow::Sigkill,
                   StopHow::Crash, StopHow::BootFailed})
    CHECK(stop_how_from_string(to_string(how)) == how);
  CHECK(to_string(StopHow::GuestPoweroff) == "guest-poweroff");
  CHECK(to_string(StopHow::BootFailed) == "boot-failed");
  for (auto in : {Intent::Creating, Intent::Running, Intent::Stopped, Intent::Failed})
    CHECK(intent_from_string(to_string(in)) == in);
  CHECK_FALSE(stop_how_from_string("exploded").has_value());
}

TEST_CASE("meta.json that is not JSON is corrupt", "[meta]") {
  for (std::string text : {"", "{", "not json", "{\"schema\": 1,}", "\xff\xfe", "[1,2", "null"}) {
    INFO(text);
    CHECK_THROWS_AS(parse_meta(text), MetaCorrupt);
  }
  CHECK(corrupt_reason("{").find("not valid JSON") != std::string::npos);
  CHECK(corrupt_reason("[]").find("should be an object") != std::string::npos);
}

TEST_CASE("a missing field is corrupt and named", "[meta]") {
  for (const char* field : {"id", "repo", "ref", "commit", "created", "image", "accelerator", "cpus",
                            "memory_mib", "ssh_port", "status", "history", "net", "checked_out"}) {
    json::object o = valid_object();
    o.erase(field);
    INFO(field);
    CHECK(corrupt_reason(json::serialize(o)).find(std::string("'") + field + "'") != std::string::npos);
  }
  json::object o = valid_object();
  o["history"].as_array()[1].as_object().erase("started");
  CHECK(corrupt_reason(json::serialize(o)) == "missing field 'history[1].started'");
}

TEST_CASE("a field of the wrong type or range is corrupt and named", "[meta]") {
  struct Case {
    const char* field;
    json::value value;
    const char* expect;
  };
  std::vector<Case> cases = {
      {"id", 7, "'id' should be a string, not a number"},
      {"cpus", "two", "'cpus' should be an integer, not a string"},
      {"cpus", 0, "'cpus' is out of range"},
      {"cpus", -1, "'cpus' is out of range"},
      {"cpus", 1.5, "'cpus' should be an integer"},
      {"cpus", 65, "'cpus' is out of range"},
      {"memory_mib", 32, "'memory_mib' is out of range"},
      {"ssh_port", 70000, "'ssh_port' is out of range"},
      {"memory_mib", json::array{}, "'memory_mib' should be an integer, not an array"},
      {"history", json::object{}, "'history' should be an array"},
      {"status", "running", "'status' should be an object"},
      {"agent_command", json::array{"sh", 3}, "'agent_command[1]' should be a string, not a number"},
      {"agent_command", "sh", "'agent_command' should be an array of strings"},
      {"qemu", json::object{{"pid", -5}}, "'qemu.pid' is out of range"},
      {"qemu", json::object{{"pid", "12"}}, "'qemu.pid' should be an integer"},
  };
  for (auto& c : cases) {
    json::object o = valid_object();
    o[c.field] = c.value;
    INFO(c.field << " = " << json::serialize(c.value));
    CHECK(corrupt_reason(json::serialize(o)).find(c.expect) != std::string::npos);
  }
  json::object o = valid_object();
  o["status"].as_object()["intent"] = "dancing";
  CHECK(corrupt_reason(json::serialize(o)).find("'status.intent' is unknown") != std::string::npos);
  o = valid_object();
  o["history"].as_array()[0].as_object()["how"] = "exploded";
  CHECK(corrupt_reason(json::serialize(o)).find("'history[0].how' is unknown") != std::string::npos);
}

TEST_CASE("another schema version is reported as such, not as corrupt", "[meta]") {
  for (long long v : {0LL, 2LL, 99LL, -1LL}) {
    json::object o = valid_object();
    o["schema"] = v;
    try {
      parse_meta(json::serialize(o));
      FAIL("accepted schema " << v);
    } catch (const MetaUnknownSchema& e) {
      CHECK(e.found() == v);
      CHECK(std::string(e.what()).find("schema version " + std::to_string(v)) != std::string::npos);
    }
  }
  // A future version may change any other field: the version decides first.
  CHECK_THROWS_AS(parse_meta(R"({"schema": 2, "id": 5})"), MetaUnknownSchema);
  CHECK_THROWS_AS(parse_meta(R"({"schema": "1"})"), MetaCorrupt);
  CHECK_THROWS_AS(parse_meta(R"({"id": "x"})"), MetaCorrupt);
}

TEST_CASE("parse_meta throws only its two errors on hostile input", "[meta]") {
  std::vector<std::string> inputs = {
      std::string(10000, '['),
      std::string(100000, '{'),
      "{\"schema\": 1e400}",
      "{\"schema\": 18446744073709551615}",
      "{\"schema\": 1, \"id\": \"a\\u0000b\"}",
      std::string("{\"schema\": 1\0}", 14),
      "{\"schema\":1,\"schema\":2}",
  };
  // Every prefix of a valid document.
  std::string valid = format_meta(full_meta());
  for (std::size_t i = 0; i < valid.size(); i += 7) inputs.push_back(valid.substr(0, i));
  for (const auto& in : inputs) {
    try {
      parse_meta(in);
    } catch (const MetaCorrupt&) {
    } catch (const MetaUnknownSchema&) {
    }
  }
}

TEST_CASE("load_meta reports a missing file as corrupt", "[meta]") {
  avm::TempDir dir;
  try {
    load_meta(dir.path() / "meta.json");
    FAIL("no throw");
  } catch (const MetaCorrupt& e) {
    CHECK(e.reason() == "it is missing");
  }
  avm::write_file_atomic(dir.path() / "meta.json", format_meta(full_meta()));
  CHECK(load_meta(dir.path() / "meta.json") == full_meta());
}
