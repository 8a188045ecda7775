// agent-logs: a session's serial console.
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <boost/json.hpp>
#include <iostream>

#include "commands/command.h"
#include "commands/common.h"
#include "launcher/qemu_process.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/file.h"
#include "util/platform.h"
#include "util/process.h"
#include "util/strings.h"

namespace avm::cmd {

namespace {

namespace json = boost::json;

// One entry of the network audit: a JSON line of gateway.log or egress.log.
struct NetEntry {
  std::string time;
  json::object obj;  // with "source" added
};

void read_net_log(const std::filesystem::path& file, const char* source, std::vector<NetEntry>& out) {
  auto text = read_file_if_exists(file);
  if (!text) return;
  for (const auto& line : split(*text, '\n')) {
    if (trim(line).empty()) continue;
    boost::system::error_code ec;
    json::value v = json::parse(line, ec);
    NetEntry e;
    if (!ec && v.is_object()) {
      e.obj = std::move(v.as_object());
      if (auto t = e.obj.if_contains("time"); t && t->is_string()) e.time = std::string(t->get_string());
    } else {
      e.obj["message"] = line;  // a line from before the log was JSON
    }
    e.obj["source"] = source;
    out.push_back(std::move(e));
  }
}

std::string str_of(const json::object& o, std::string_view key) {
  auto v = o.if_contains(key);
  if (!v) return "";
  if (v->is_string()) return std::string(v->get_string());
  if (v->is_null()) return "";
  return json::serialize(*v);
}

// One line for people: time, source, then what happened.
std::string human_net_line(const NetEntry& e) {
  const auto& o = e.obj;
  std::string src = str_of(o, "source");
  std::string out = (e.time.empty() ? std::string("-") : e.time) + "  " + src + "  ";
  if (o.contains("message")) return out + str_of(o, "message");
  if (src == "gateway") {
    out += str_of(o, "method") + " " + str_of(o, "path");
    if (auto m = str_of(o, "model"); !m.empty()) out += " model=" + m;
    out += " status=" + str_of(o, "status") + " in=" + str_of(o, "input_tokens") + " out=" +
           str_of(o, "output_tokens") + " " + str_of(o, "duration_ms") + "ms";
  } else {
    out += "CONNECT " + str_of(o, "target");
    if (auto a = str_of(o, "address"); !a.empty()) out += " -> " + a;
    out += " " + str_of(o, "verdict");
    if (auto r = str_of(o, "reason"); !r.empty()) out += " (" + r + ")";
    out += " up=" + str_of(o, "bytes_up") + " down=" + str_of(o, "bytes_down") + " " + str_of(o, "duration_ms") + "ms";
  }
  if (auto err = str_of(o, "error"); !err.empty()) out += "  error: " + err;
  return out;
}

class Logs final : public Command {
 public:
  std::string name() const override { return "logs"; }
  std::string summary() const override { return "Show a session's serial console log"; }

  void configure(CLI::App& app) override {
    app.description(
        "Prints the guest's serial console (kernel and boot messages) of the current\n"
        "or last boot. With -f, keeps printing what the guest writes until its VM\n"
        "stops or you press Ctrl+C. --previous shows the boot before.\n"
        "\n"
        "--net shows the network audit instead: the model gateway's log (one entry per\n"
        "model request) and the egress proxy's (one entry per connection), merged by\n"
        "time; --json prints them as JSON, one object per line, each with its source.");
    app.add_option("id", id_, "Session id, or any unique prefix of one")->required();
    app.add_flag("-f,--follow", follow_, "Keep printing new output until the VM stops");
    app.add_option("-n,--lines", lines_, "Only the last N lines");
    app.add_flag("--previous", previous_, "The boot before the current one");
    app.add_flag("--net", net_, "The model gateway's and egress proxy's logs, merged by time");
    app.add_flag("--json", json_, "With --net: one JSON object per line, each with its source");
    app.footer("EXAMPLES\n  agent-logs k3f9\n  agent-logs -f -n 20 k3f9\n  agent-logs --net --json k3f9 | jq .status");
  }

  int run() override {
    auto store = open_store();
    auto t = sessions::log_target(store, id_);
    if (json_ && !net_) throw Error("--json applies to --net", "agent-logs --net --json " + t.id);
    if (net_) {
      if (follow_ || previous_) throw Error("--net cannot be combined with --follow or --previous", "drop them");
      std::vector<NetEntry> all;
      read_net_log(t.gateway_log, "gateway", all);
      read_net_log(t.egress_log, "egress", all);
      std::stable_sort(all.begin(), all.end(), [](const NetEntry& a, const NetEntry& b) { return a.time < b.time; });
      std::size_t from = lines_ && *lines_ < all.size() ? all.size() - *lines_ : 0;
      for (std::size_t i = from; i < all.size(); ++i)
        std::cout << (json_ ? json::serialize(all[i].obj) : human_net_line(all[i])) << "\n";
      return 0;
    }
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
    Fd in = platform::watch_dir(log.parent_path());
    Fd exited = t.pid ? platform::exit_watch(static_cast<pid_t>(*t.pid)) : Fd();
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
      pollfd fds[2] = {{in.get(), POLLIN, 0}, {exited.get(), POLLIN, 0}};
      int r = ::poll(fds, exited ? 2 : 1, -1);
      if (r < 0) {
        if (errno == EINTR) continue;
        throw_errno("poll");
      }
      if (fds[0].revents) {
        platform::read_dir_watch(in.get());
        drain();
      }
      if (exited && fds[1].revents) {
        drain();
        return 0;
      }
    }
  }

  std::string id_;
  bool follow_ = false, previous_ = false, net_ = false, json_ = false;
  std::optional<size_t> lines_;
};

}  // namespace

std::unique_ptr<Command> make_logs() { return std::make_unique<Logs>(); }

}  // namespace avm::cmd
