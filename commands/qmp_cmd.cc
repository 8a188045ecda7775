// agent-vm qmp: one QMP command to a QEMU monitor socket, or its event stream.
#include <CLI/CLI.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <csignal>
#include <iostream>

#include "commands/command.h"
#include "commands/render.h"
#include "json/text.h"
#include "qmp/qmp_client.h"
#include "util/error.h"

namespace avm::cmd {

namespace {

namespace json = boost::json;

volatile std::sig_atomic_t g_interrupted = 0;
extern "C" void on_sigint(int) { g_interrupted = 1; }

// Restores the previous SIGINT/SIGTERM handlers when it goes.
class InterruptGuard {
 public:
  InterruptGuard() {
    g_interrupted = 0;
    old_int_ = std::signal(SIGINT, on_sigint);
    old_term_ = std::signal(SIGTERM, on_sigint);
  }
  ~InterruptGuard() {
    std::signal(SIGINT, old_int_);
    std::signal(SIGTERM, old_term_);
  }
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;

 private:
  void (*old_int_)(int);
  void (*old_term_)(int);
};

}  // namespace

namespace {

class QmpCommand final : public Command {
 public:
  std::string name() const override { return "qmp"; }
  std::string summary() const override {
    return "Send one QMP command to a QEMU monitor socket (or stream events)";
  }

  void configure(CLI::App& app) override {
    app.add_option("socket", socket_, "QMP unix socket (a session's run/qmp.sock)")->required();
    app.add_option("command", command_, "QMP command, e.g. query-status, stop, cont, qom-list");
    app.add_option("arguments", arguments_, "the command's arguments as one JSON object");
    app.add_flag("--events", events_, "stream events as JSON lines instead of sending a command");
    app.add_flag("--compact,-c", compact_, "print the reply on one line (default: indented)");
    app.add_option("--timeout", timeout_ms_,
                   "milliseconds allowed for connecting and for the reply")
        ->default_val(5000)
        ->check(CLI::Range(1, 24 * 3600 * 1000));
    app.footer(
        "DESCRIPTION\n"
        "  Connects to a QEMU QMP socket, negotiates capabilities, sends one command\n"
        "  and prints QEMU's \"return\" value as JSON. An error reply is printed to\n"
        "  stderr with its class and description, and the exit code is 1.\n"
        "\n"
        "  With --events, prints every event QEMU emits, one JSON object per line\n"
        "  (with a \"seq\" number), until interrupted (exit code 130) or until QEMU\n"
        "  closes the socket (exit code 0).\n"
        "\n"
        "  QEMU serves one client per QMP socket at a time: while another client\n"
        "  holds it, this command times out waiting for the greeting.\n"
        "\n"
        "EXAMPLES\n"
        "  agent-vm qmp ~/.agent-vm/sessions/k3f9/run/qmp.sock query-status\n"
        "  agent-vm qmp run/qmp.sock qom-list '{\"path\": \"/machine/peripheral\"}'\n"
        "  agent-vm qmp run/qmp.sock human-monitor-command '{\"command-line\": \"info network\"}'\n"
        "  agent-vm qmp run/qmp.sock query-qmp-schema --compact > schema.json\n"
        "  agent-vm qmp run/qmp.sock --events\n"
        "\n"
        "EXIT STATUS\n"
        "  0 success; 1 an error reply, a timeout or a closed connection;\n"
        "  2 bad usage; 130 --events interrupted");
  }

  int run() override {
    using namespace avm::qmp;
    Ms timeout(timeout_ms_);
    if (events_ && !command_.empty())
      throw Error("--events streams events and sends no command; got command '" + command_ + "'",
                  "drop the command, or drop --events");
    if (!events_ && command_.empty())
      throw Error("no command given", "e.g. 'agent-vm qmp " + socket_ + " query-status', or --events");
    json::object args = parse_command_arguments(arguments_, command_);
    QmpClient qmp = QmpClient::connect(socket_, timeout);
    if (events_) return stream(qmp);
    json::value result = qmp.execute(command_, std::move(args), timeout);
    print(result);
    return 0;
  }

 private:
  void print(const json::value& v) const {
    std::cout << (compact_ ? json::serialize(v) : avm::json::pretty_json(v)) << std::endl;
  }

  int stream(avm::qmp::QmpClient& qmp) {
    using namespace avm::qmp;
    InterruptGuard guard;
    const Greeting& g = qmp.greeting();
    std::cerr << "agent-vm qmp: streaming events from " << socket_ << " (QEMU " << g.major << "." << g.minor
              << "." << g.micro << "); Ctrl-C stops" << std::endl;
    EventCursor seen = 0;
    for (;;) {
      if (g_interrupted) return 130;
      std::optional<Event> e;
      try {
        // Short slices so an interrupt is noticed promptly.
        e = qmp.wait_event("", seen, Ms(200));
      } catch (const ClosedError&) {
        std::cerr << "agent-vm qmp: QEMU closed " << socket_ << "\n";
        return 0;
      }
      if (!e) continue;
      seen = e->seq;
      std::cout << json::serialize(to_json(*e)) << std::endl;
    }
  }

  std::string socket_, command_, arguments_;
  bool events_ = false, compact_ = false;
  int timeout_ms_ = 5000;
};

}  // namespace

std::unique_ptr<Command> make_qmp() { return std::make_unique<QmpCommand>(); }

}  // namespace avm::cmd
