// agent-vm egress: the per-connection egress proxy QEMU starts in restricted
// networking (guestfwd cmd:). Not for people: it speaks HTTP on stdin/stdout.
#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "commands/command.h"
#include "launcher/egress.h"
#include "util/fd.h"

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
    app.add_option("--log", log_, "Append one line per connection to FILE (default: no log)")->type_name("FILE");
  }

  int run() override {
    // QEMU hands the guest's connection over as stdin, stdout *and* stderr:
    // a log line on stderr would land in the guest's tunnel, ahead of the
    // reply, and break every TLS handshake. The log goes to its own file.
    Fd log(::open(log_.empty() ? "/dev/null" : log_.c_str(),
                  O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!log) log = Fd(::open("/dev/null", O_WRONLY | O_CLOEXEC));
    if (!log || ::dup2(log.get(), STDERR_FILENO) < 0) ::close(STDERR_FILENO);
    return launcher::serve_egress(STDIN_FILENO, STDOUT_FILENO, policy_, std::cerr);
  }

 private:
  launcher::EgressPolicy policy_;
  std::string log_;
};

}  // namespace

std::unique_ptr<Command> make_egress() { return std::make_unique<Egress>(); }

}  // namespace avm::cmd
