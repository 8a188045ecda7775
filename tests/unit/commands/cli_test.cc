#include "commands/cli.h"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "commands/command.h"
#include "util/process.h"

using avm::cmd::normalize_argv;
using avm::cmd::run_cli;
using avm::cmd::subcommand_for_program;

namespace {

struct Captured {
  int code;
  std::string out, err;
};

// Runs the CLI in-process with std::cout/std::cerr captured.
Captured capture(std::vector<std::string> argv) {
  std::ostringstream out, err;
  auto* old_out = std::cout.rdbuf(out.rdbuf());
  auto* old_err = std::cerr.rdbuf(err.rdbuf());
  int code = run_cli(argv, avm::cmd::all_commands());
  std::cout.rdbuf(old_out);
  std::cerr.rdbuf(old_err);
  return {code, out.str(), err.str()};
}

std::filesystem::path bin_dir() {
  return std::filesystem::path(AGENT_VM_TEST_BIN).parent_path();
}

}  // namespace

TEST_CASE("link names map to subcommands", "[cli]") {
  CHECK(subcommand_for_program("agent-spawn") == "spawn");
  CHECK(subcommand_for_program("/usr/local/bin/agent-list") == "list");
  CHECK(subcommand_for_program("./agent-exec") == "exec");
  CHECK_FALSE(subcommand_for_program("agent-vm").has_value());
  CHECK_FALSE(subcommand_for_program("agent-unknown").has_value());
  CHECK_FALSE(subcommand_for_program("spawn").has_value());
}

TEST_CASE("argv of a link becomes agent-vm <sub> ...", "[cli]") {
  CHECK(normalize_argv({"agent-stop", "abc", "--force"}) ==
        std::vector<std::string>{"agent-vm", "stop", "abc", "--force"});
  CHECK(normalize_argv({"/opt/bin/agent-vm", "list"}) ==
        std::vector<std::string>{"/opt/bin/agent-vm", "list"});
  CHECK(normalize_argv({}) == std::vector<std::string>{"agent-vm"});
}

TEST_CASE("the version flag prints the version", "[cli]") {
  auto r = capture({"agent-vm", "--version"});
  CHECK(r.code == 0);
  CHECK(r.out.find("agent-vm " AGENT_VM_VERSION) != std::string::npos);
}

TEST_CASE("help lists every subcommand with its summary", "[cli]") {
  auto r = capture({"agent-vm", "--help"});
  CHECK(r.code == 0);
  for (auto& c : avm::cmd::all_commands()) {
    if (c->summary().empty()) continue;  // internal commands are not listed
    INFO(c->name());
    CHECK(r.out.find(c->name()) != std::string::npos);
    CHECK(r.out.find(c->summary()) != std::string::npos);
  }
}

TEST_CASE("no subcommand is a usage error", "[cli]") {
  auto r = capture({"agent-vm"});
  CHECK(r.code == 2);
  CHECK(r.err.find("--help") != std::string::npos);
}

TEST_CASE("an unknown option is a usage error naming the program", "[cli]") {
  auto r = capture({"agent-vm", "--no-such-option"});
  CHECK(r.code == 2);
  CHECK(r.err.find("agent-vm") != std::string::npos);
  CHECK(r.err.find("--no-such-option") != std::string::npos);
}

TEST_CASE("the installed links dispatch on argv[0]", "[cli][binary]") {
  auto dir = bin_dir();
  for (const auto& link : avm::cmd::link_names()) {
    INFO(link);
    // agent-list is a program of its own (below); the others link to agent-vm.
    if (link == "agent-list")
      REQUIRE(std::filesystem::is_regular_file(dir / link));
    else
      REQUIRE(std::filesystem::is_symlink(dir / link));
    auto r = avm::run({(dir / link).string(), "--help"});
    CHECK(r.exit_code == 0);
    // The help is the subcommand's, not the top-level one.
    std::string sub = *subcommand_for_program(link);
    CHECK(r.out.find("Usage: agent-vm " + sub) != std::string::npos);
  }
}

TEST_CASE("agent-list loads no libgit2, libssh or OpenSSL", "[cli][binary]") {
  // Its start is most of its time: the dynamic loader's work for those
  // libraries cost more than asking 20 VMs.
  auto list = bin_dir() / "agent-list";
  REQUIRE(std::filesystem::is_regular_file(list));
  auto r = avm::run({"ldd", list.string()});
  REQUIRE(r.exit_code == 0);
  INFO(r.out);
  CHECK(r.out.find("libboost_json") != std::string::npos);  // ldd read it
  for (const char* lib : {"libgit2", "libssh", "libssl", "libcrypto"}) CHECK(r.out.find(lib) == std::string::npos);
  // And it is the list command: its options, and no other command's.
  auto help = avm::run({list.string(), "--help"});
  CHECK(help.exit_code == 0);
  CHECK(help.out.find("--deep") != std::string::npos);
  auto other = avm::run({list.string(), "spawn"});
  CHECK(other.exit_code == 2);
}
