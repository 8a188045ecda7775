// agent-vm qga: one command to a QEMU guest agent socket.
#include <CLI/CLI.hpp>
#include <boost/json/serialize.hpp>
#include <iostream>

#include "commands/command.h"
#include "commands/render.h"
#include "json/text.h"
#include "qmp/qga_client.h"
#include "util/error.h"

namespace avm::cmd {

namespace {

namespace json = boost::json;

class QgaCommand final : public Command {
 public:
  std::string name() const override { return "qga"; }
  std::string summary() const override { return "Send one command to a QEMU guest agent socket"; }

  void configure(CLI::App& app) override {
    app.add_option("socket", socket_, "guest agent unix socket (a session's run/qga.sock)")->required();
    app.add_option("command", command_, "agent command, e.g. guest-ping, guest-info, guest-get-osinfo")
        ->required();
    app.add_option("arguments", arguments_, "the command's arguments as one JSON object");
    app.add_flag("--compact,-c", compact_, "print the reply on one line (default: indented)");
    app.add_option("--timeout", timeout_ms_,
                   "milliseconds allowed in all: connecting, waiting for the agent, the reply")
        ->default_val(10000)
        ->check(CLI::Range(1, 24 * 3600 * 1000));
    app.footer(
        "DESCRIPTION\n"
        "  Connects to the guest agent's socket (QEMU's chardev for the\n"
        "  virtio-serial port org.qemu.guest_agent.0), synchronises with the agent\n"
        "  (guest-sync-delimited: stale replies are discarded, and an agent that is\n"
        "  not up yet is waited for until the timeout), sends one command and\n"
        "  prints its \"return\" value as JSON. An error reply is printed to stderr\n"
        "  with its class and description, and the exit code is 1.\n"
        "\n"
        "  guest-exec returns a pid; guest-exec-status reports the output base64\n"
        "  encoded, as the agent sends it ('agent-vm exec' runs a command and\n"
        "  decodes it). guest-shutdown and guest-suspend-* send no reply when they\n"
        "  work: this prints {} unless the agent refuses within a second.\n"
        "\n"
        "EXAMPLES\n"
        "  agent-vm qga ~/.agent-vm/sessions/k3f9/run/qga.sock guest-ping\n"
        "  agent-vm qga run/qga.sock guest-get-osinfo\n"
        "  agent-vm qga run/qga.sock guest-exec '{\"path\": \"uname\", \"arg\": [\"-r\"], \"capture-output\": true}'\n"
        "  agent-vm qga run/qga.sock guest-exec-status '{\"pid\": 1234}'\n"
        "  agent-vm qga run/qga.sock guest-ping --timeout 120000   # wait for a booting guest\n"
        "\n"
        "EXIT STATUS\n"
        "  0 success; 1 an error reply, a timeout or a closed connection; 2 bad usage");
  }

  int run() override {
    using namespace avm::qmp;
    auto deadline = Clock::now() + Ms(timeout_ms_);
    json::object args = parse_command_arguments(arguments_, command_);
    QgaClient qga = QgaClient::connect(socket_, remaining(deadline));
    qga.sync(remaining(deadline));
    json::value result = json::object{};
    if (QgaClient::replies_on_success(command_))
      result = qga.execute(command_, std::move(args), std::max(remaining(deadline), Ms(1)));
    else
      qga.execute_no_reply(command_, std::move(args), Ms(1000));
    std::cout << (compact_ ? json::serialize(result) : avm::json::pretty_json(result)) << std::endl;
    return 0;
  }

 private:
  std::string socket_, command_, arguments_;
  bool compact_ = false;
  int timeout_ms_ = 10000;
};

}  // namespace

std::unique_ptr<Command> make_qga() { return std::make_unique<QgaCommand>(); }

}  // namespace avm::cmd
