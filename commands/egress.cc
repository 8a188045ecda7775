// agent-vm egress: the per-connection egress proxy QEMU starts in restricted
// networking (guestfwd cmd:). Not for people: it speaks HTTP on stdin/stdout.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "commands/command.h"
#include "launcher/egress.h"

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
        "for each connection the guest opens to 10.0.2.100:3128.");
    app.add_option("--allow", policy_.allow, "An allowed HOST, HOST:PORT or *.DOMAIN (repeatable)");
  }

  int run() override { return launcher::serve_egress(STDIN_FILENO, STDOUT_FILENO, policy_, std::cerr); }

 private:
  launcher::EgressPolicy policy_;
};

}  // namespace

std::unique_ptr<Command> make_egress() { return std::make_unique<Egress>(); }

}  // namespace avm::cmd
