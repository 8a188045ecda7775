// agent-vm egress: the per-connection egress proxy QEMU starts in restricted
// networking (guestfwd cmd:). Not for people: it speaks HTTP on stdin/stdout.
#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "commands/command.h"
#include "launcher/egress.h"
#include "util/fd.h"
#include "util/file.h"

namespace avm::cmd {

namespace {

class Egress final : public Command {
 public:
  std::string name() const override { return "egress"; }
  std::string summary() const override { return ""; }  // hidden: QEMU runs it

  void configure(CLI::App& app) override {
    app.description(
        "Serves one guest connection of restricted networking on stdin/stdout: reads\n"
        "an HTTP CONNECT request and tunnels it if the host is allowed. QEMU runs this\n"
        "for each connection the guest opens to 10.0.2.100:3128. DIR is the session's\n"
        "host-only folder: the allowlist and deadlines are read from its egress.json\n"
        "for each connection, and one JSON line per connection goes to its egress.log.");
    app.add_option("--dir", dir_, "The session's host-only folder")->required()->type_name("DIR");
  }

  int run() override {
    std::filesystem::path dir = dir_;
    // QEMU hands the guest's connection over as stdin, stdout *and* stderr:
    // a log line on stderr would land in the guest's tunnel, ahead of the
    // reply, and break every TLS handshake. The log goes to its own file.
    Fd log(::open((dir / launcher::kEgressLogFile).c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
                  0600));
    if (!log) log = Fd(::open("/dev/null", O_WRONLY | O_CLOEXEC));
    if (!log || ::dup2(log.get(), STDERR_FILENO) < 0) ::close(STDERR_FILENO);
    // A missing or broken egress.json allows nothing.
    launcher::EgressConfig config;
    try {
      config = launcher::parse_egress_config(read_file(dir / launcher::kEgressConfigFile));
    } catch (const std::exception&) {
    }
    return launcher::serve_egress(STDIN_FILENO, STDOUT_FILENO, config.policy, std::cerr, config.deadlines);
  }

 private:
  std::string dir_;
};

}  // namespace

std::unique_ptr<Command> make_egress() { return std::make_unique<Egress>(); }

}  // namespace avm::cmd
