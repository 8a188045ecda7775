#include "sessions/env_file.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <cstdlib>

#include "helpers.h"
#include "util/error.h"
#include "util/file.h"
#include "util/temp_dir.h"

using namespace avm::sessions;
using avm::test::ScopedEnv;

TEST_CASE("collect_env takes the names asked for and never the API key", "[env]") {
  ScopedEnv key("ANTHROPIC_API_KEY", "sk-secret");
  ScopedEnv extra("AVM_TEST_EXTRA", "x=y z");
  ScopedEnv missing("AVM_TEST_MISSING", nullptr);
  auto sel = collect_env({"AVM_TEST_EXTRA", "AVM_TEST_MISSING", "AVM_TEST_EXTRA"});
  CHECK(sel.vars == EnvVars{{"AVM_TEST_EXTRA", "x=y z"}});
  CHECK(sel.missing == std::vector<std::string>{"AVM_TEST_MISSING"});
  CHECK(collect_env({}).vars.empty());
}

TEST_CASE("collect_env refuses the API key and the base URL, which stay on the host", "[env]") {
  ScopedEnv key("ANTHROPIC_API_KEY", "sk-secret");
  try {
    collect_env({"ANTHROPIC_API_KEY"});
    FAIL("accepted");
  } catch (const avm::Error& e) {
    CHECK(std::string(e.what()).find("into the guest") != std::string::npos);
    CHECK(e.hint().find("gateway") != std::string::npos);
  }
  CHECK_THROWS_AS(collect_env({"ANTHROPIC_BASE_URL"}), avm::Error);
}

TEST_CASE("collect_env refuses values on the command line and bad names", "[env]") {
  try {
    collect_env({"TOKEN=hunter2"});
    FAIL("accepted NAME=VALUE");
  } catch (const avm::Error& e) {
    std::string all = std::string(e.what()) + e.hint();
    CHECK(all.find("export TOKEN") != std::string::npos);
    CHECK(all.find("hunter2") == std::string::npos);  // never echo the secret
  }
  CHECK_THROWS_AS(collect_env({"1ABC"}), avm::Error);
  CHECK_THROWS_AS(collect_env({"A-B"}), avm::Error);
  CHECK_THROWS_AS(collect_env({""}), avm::Error);
}

TEST_CASE("the env file is 0600 and round-trips", "[env]") {
  avm::TempDir dir;
  auto path = dir.path() / "env";
  EnvVars vars{{"ANTHROPIC_API_KEY", "sk-ant-123"}, {"EMPTY", ""}, {"SPACED", "a b 'c' \"d\" $e"}};
  write_env_file(path, vars);
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(avm::read_file(path) == "ANTHROPIC_API_KEY=sk-ant-123\nEMPTY=\nSPACED=a b 'c' \"d\" $e\n");
  CHECK(read_env_file(path) == vars);
  CHECK(read_env_file(dir.path() / "none").empty());
}

TEST_CASE("a value the file cannot carry is refused without writing", "[env]") {
  avm::TempDir dir;
  auto path = dir.path() / "env";
  CHECK_THROWS_AS(write_env_file(path, {{"K", "line1\nline2"}}), avm::Error);
  CHECK_THROWS_AS(write_env_file(path, {{"K", std::string("a\0b", 3)}}), avm::Error);
  CHECK_THROWS_AS(write_env_file(path, {{"BAD NAME", "v"}}), avm::Error);
  CHECK_FALSE(std::filesystem::exists(path));
}
