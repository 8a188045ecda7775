// agent-logs: a session's serial console.
#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "commands/command.h"
#include "commands/common.h"
#include "launcher/qemu_process.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/file.h"
#include "util/process.h"
#include "util/strings.h"

namespace avm::cmd {

namespace {

class Logs final : public Command {
 public:
  std::string name() const override { return "logs"; }
  std::string summary() const override { return "Show a session's serial console log"; }

  void configure(CLI::App& app) override {
    app.description(
        "Prints the guest's serial console (kernel and boot messages) of the current\n"
        "or last boot. With -f, keeps printing what the guest writes until its VM\n"
        "stops or you press Ctrl+C. --previous shows the boot before.");
    app.add_option("id", id_, "Session id, or any unique prefix of one")->required();
    app.add_flag("-f,--follow", follow_, "Keep printing new output until the VM stops");
    app.add_option("-n,--lines", lines_, "Only the last N lines");
    app.add_flag("--previous", previous_, "The boot before the current one");
    app.footer("EXAMPLES\n  agent-logs k3f9\n  agent-logs -f -n 20 k3f9");
  }

  int run() override {
    auto store = open_store();
    auto t = sessions::log_target(store, id_);
    std::filesystem::path log = previous_ ? t.previous_console_log : t.console_log;
    auto text = read_file_if_exists(log);
    if (!text) {
      if (!follow_ || previous_)
        throw Error("session " + t.id + " has no console log yet" + (previous_ ? " from a previous boot" : ""),
                    "it is written while its VM runs; start it with 'agent-resume " + t.id + "'");
      text = "";
    }
    std::cout << (lines_ ? tail_lines(*text, *lines_) : *text) << std::flush;
    if (!follow_ || previous_) return 0;
    return follow(log, text->size(), t);
  }

 private:
  int follow(const std::filesystem::path& log, size_t offset, const sessions::LogTarget& t) {
    Fd in(::inotify_init1(IN_CLOEXEC));
    if (!in) throw_errno("inotify_init1");
    ::inotify_add_watch(in.get(), log.parent_path().c_str(), IN_MODIFY | IN_CREATE);
    Fd pidfd = t.pid ? open_pidfd(static_cast<pid_t>(*t.pid)) : Fd();
    auto drain = [&] {
      Fd f(::open(log.c_str(), O_RDONLY | O_CLOEXEC));
      if (!f) return;
      if (::lseek(f.get(), 0, SEEK_END) < static_cast<off_t>(offset)) offset = 0;  // a new boot's log
      ::lseek(f.get(), static_cast<off_t>(offset), SEEK_SET);
      char buf[65536];
      ssize_t n;
      while ((n = ::read(f.get(), buf, sizeof buf)) > 0) {
        std::cout.write(buf, n);
        offset += static_cast<size_t>(n);
      }
      std::cout << std::flush;
    };
    drain();
    if (!t.pid) return 0;  // not running: nothing more will come
    for (;;) {
      pollfd fds[2] = {{in.get(), POLLIN, 0}, {pidfd.get(), POLLIN, 0}};
      int r = ::poll(fds, pidfd ? 2 : 1, -1);
      if (r < 0) {
        if (errno == EINTR) continue;
        throw_errno("poll");
      }
      if (fds[0].revents) {
        char ev[4096];
        ssize_t n = ::read(in.get(), ev, sizeof ev);
        (void)n;
        drain();
      }
      if (pidfd && fds[1].revents) {
        drain();
        return 0;
      }
    }
  }

  std::string id_;
  bool follow_ = false, previous_ = false;
  std::optional<size_t> lines_;
};

}  // namespace

std::unique_ptr<Command> make_logs() { return std::make_unique<Logs>(); }

}  // namespace avm::cmd
