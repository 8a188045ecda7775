// agent-vm gateway: the per-connection model gateway QEMU starts for the
// guest's connections to 10.0.2.100:80 (guestfwd cmd:). Not for people: it
// speaks HTTP on stdin/stdout.
#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include "commands/command.h"
#include "launcher/gateway.h"
#include "util/fd.h"

namespace avm::cmd {

namespace {

class Gateway final : public Command {
 public:
  std::string name() const override { return "gateway"; }
  std::string summary() const override { return ""; }  // hidden: QEMU runs it

  void configure(CLI::App& app) override {
    app.description(
        "Serves one guest connection to the model gateway on stdin/stdout: HTTP/1.1\n"
        "requests, each sent on to the session's upstream with the real API key, the\n"
        "answer streamed back, its tokens counted. QEMU runs this for each connection\n"
        "the guest opens to 10.0.2.100:80. DIR is the session's host-only folder\n"
        "(gateway.json, api-key, usage.json, gateway.log).");
    app.add_option("--dir", dir_, "The session's host-only folder")->required()->type_name("DIR");
  }

  int run() override {
    // QEMU hands the guest's connection over as stdin, stdout *and* stderr:
    // nothing may be written to stderr.
    Fd null(::open("/dev/null", O_WRONLY | O_CLOEXEC));
    if (!null || ::dup2(null.get(), STDERR_FILENO) < 0) ::close(STDERR_FILENO);
    return launcher::serve_gateway(STDIN_FILENO, STDOUT_FILENO, dir_);
  }

 private:
  std::string dir_;
};

}  // namespace

std::unique_ptr<Command> make_gateway() { return std::make_unique<Gateway>(); }

}  // namespace avm::cmd
