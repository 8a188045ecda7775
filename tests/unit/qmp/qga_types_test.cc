#include "qmp/qga_types.h"

#include <catch2/catch.hpp>

#include "qmp/errors.h"
#include "transcript.h"

using namespace avm::qmp;
namespace json = boost::json;

TEST_CASE("guest-exec arguments use the agent's field names", "[qga_types]") {
  GuestExecArgs a{"sh", {"-c", "true"}, {"A=1"}, std::string("in\n"), true};
  json::value v = json::value_from(a);
  CHECK(v.at("path") == "sh");
  CHECK(v.at("arg") == json::array{"-c", "true"});
  CHECK(v.at("env") == json::array{"A=1"});
  CHECK(v.at("input-data") == "aW4K");
  CHECK(v.at("capture-output") == true);
  json::value bare = json::value_from(GuestExecArgs{"true", {}, {}, {}, false});
  CHECK_FALSE(bare.as_object().contains("arg"));
  CHECK_FALSE(bare.as_object().contains("input-data"));
}

TEST_CASE("guest-exec-status decodes the recorded output", "[qga_types]") {
  auto t = test::Transcript::load("qga-exec.txt");
  auto s = json::value_to<ExecStatus>(t.reply_to("guest-exec-status").at("return"));
  CHECK(s.exited);
  CHECK(s.exit_code == 3);
  CHECK(s.out == "out:hello:hi\n");
  CHECK(s.err == "err\n");
}

TEST_CASE("guest-exec-status: running, signalled, and bad base64", "[qga_types]") {
  auto running = json::value_to<ExecStatus>(json::value{{"exited", false}});
  CHECK_FALSE(running.exited);
  CHECK_FALSE(running.exit_code);
  auto killed = json::value_to<ExecStatus>(json::value{{"exited", true}, {"signal", 15}, {"out-truncated", true}});
  CHECK(killed.signal == 15);
  CHECK(killed.out_truncated);
  CHECK_THROWS_WITH(json::value_to<ExecStatus>(json::value{{"exited", true}, {"out-data", "**"}}),
                    "reply: 'out-data' is not valid base64");
  CHECK_THROWS_WITH(json::value_to<ExecStatus>(json::value{{"exitcode", 1}}), "reply has no 'exited'");
}

TEST_CASE("guest-exec-status: an exit code or signal out of range is a protocol error", "[qga_types]") {
  // {"exited": true, "signal": 2147483647} went through, and exec_result
  // computed 128 + 2147483647: signed overflow (UBSan, under the
  // qmp_message fuzz target). Casting also wrapped 4294967299 to 3.
  auto status = [](json::object o) {
    o["exited"] = true;
    return json::value_to<ExecStatus>(json::value(std::move(o)));
  };
  for (std::int64_t bad : {std::int64_t(2147483647), std::int64_t(128), std::int64_t(0), std::int64_t(-9),
                           std::int64_t(4294967305)}) {
    INFO(bad);
    CHECK_THROWS_WITH(status({{"signal", bad}}), Catch::Contains("'signal' is out of range"));
  }
  for (std::int64_t bad : {std::int64_t(4294967299), std::int64_t(-2147483649)}) {
    INFO(bad);
    CHECK_THROWS_WITH(status({{"exitcode", bad}}), Catch::Contains("'exitcode' is out of range"));
  }
  CHECK(exec_result(status({{"signal", 127}})).exit_code == 255);
  CHECK(exec_result(status({{"signal", 9}})).exit_code == 137);
  CHECK(exec_result(status({{"exitcode", -1}})).exit_code == -1);
  CHECK(exec_result(status({{"exitcode", 2147483647}})).exit_code == 2147483647);
  CHECK(exec_result(status({})).exit_code == -1);
}

TEST_CASE("guest-info and guest-get-osinfo from the recorded agent", "[qga_types]") {
  auto t = test::Transcript::load("qga-session.txt");
  auto info = json::value_to<GuestInfo>(t.reply_to("guest-info").at("return"));
  CHECK(info.supported_commands.size() > 20);
  CHECK(info.supports("guest-sync-delimited"));
  auto os = json::value_to<OsInfo>(t.reply_to("guest-get-osinfo").at("return"));
  CHECK(os.pretty_name);
  CHECK(os.kernel_release);
  CHECK_FALSE(os.variant);
}
