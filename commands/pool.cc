// agent-vm pool: keep VMs of the default image booted ahead, for agent-spawn.
#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <cstdio>
#include <iostream>

#include "commands/command.h"
#include "commands/common.h"
#include "commands/render.h"
#include "launcher/vm_spec.h"
#include "sessions/pool.h"
#include "sessions/session_vm.h"
#include "sessions/vm_driver.h"
#include "util/progress.h"
#include "util/strings.h"

namespace avm::cmd {

namespace {

std::string mib_text(unsigned long long kib) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0fM", static_cast<double>(kib) / 1024.0);
  return buf;
}

class Pool final : public Command {
 public:
  std::string name() const override { return "pool"; }
  std::string summary() const override { return "Keep booted VMs waiting for agent-spawn (the warm pool)"; }

  void configure(CLI::App& app) override {
    app.description(
        "Keeps VMs of the default image booted and waiting, so agent-spawn takes one\n"
        "instead of booting (12-25 s under TCG): the session's files move into the\n"
        "waiting VM's folder and the guest starts its setup, sshd and the agent.\n"
        "A spawn uses the pool by itself when a VM of its --memory, --cpus and --net\n"
        "waits and it has no --id, --port or --accel; each taken VM is replaced by a\n"
        "boot in the background (agent-vm pool --refill, started by the spawn).\n"
        "\n"
        "Without --size it shows the pool: each VM with its state (booting, ready,\n"
        "silent: it did not answer in time and is not handed out, or dead) and\n"
        "QEMU's memory (PSS: its share of the host's memory; RSS).\n"
        "Every waiting VM holds its guest's memory: a pool of N costs about N times\n"
        "what one idle session costs. --size 0 stops every pooled VM.");
    app.add_option("--size", size_, "How many VMs to keep waiting; 0 empties the pool")->type_name("N");
    app.add_option("--memory", memory_, "Guest memory of the pooled VMs, e.g. 2G or 512M (default: 2G)")
        ->type_name("SIZE");
    app.add_option("--cpus", cpus_, "vCPUs of the pooled VMs (default: 2)")->type_name("N");
    app.add_option("--net", net_, "Network mode of the pooled VMs: restricted (default), full or none")
        ->type_name("MODE");
    app.add_flag("--refill", refill_, "Boot what is missing to the configured size and exit (what a spawn starts)");
    app.add_flag("--json", json_, "Print the pool as JSON");
    app.footer(
        "EXIT STATUS\n"
        "  0 on success; 1 when the options are wrong or a pooled VM failed to boot.\n"
        "\n"
        "EXAMPLES\n"
        "  agent-vm pool --size 2\n"
        "  agent-vm pool --size 3 --memory 1G --net full\n"
        "  agent-vm pool --json\n"
        "  agent-vm pool --size 0");
  }

  int run() override {
    auto store = open_store();
    auto& driver = sessions::default_driver();
    if (refill_) {
      Progress progress(true);
      return sessions::refill_pool(store, progress, driver) ? 1 : 0;
    }
    if (size_) {
      sessions::PoolConfig c;
      c.size = *size_;
      if (memory_) {
        c.shape.memory_mib = parse_mib(*memory_);
        launcher::check_memory_mib(c.shape.memory_mib, *memory_);
      }
      if (cpus_) {
        launcher::check_cpus(*cpus_);
        c.shape.cpus = *cpus_;
      }
      if (net_) {
        launcher::NetMode m = sessions::net_mode(*net_);
        c.shape.net = m == launcher::NetMode::Restricted ? "restricted" : *net_;
      }
      Progress progress(json_);
      unsigned failed = sessions::resize_pool(store, c, progress, driver);
      if (failed) {
        std::cerr << "error: " << failed << " pooled VM" << (failed == 1 ? "" : "s")
                  << " failed to boot\n  hint: see agent-vm doctor, and try again\n";
      }
      show(store, driver);
      return failed ? 1 : 0;
    }
    if (memory_ || cpus_ || net_)
      throw Error("--memory, --cpus and --net set the pool's VMs: they need --size",
                  "agent-vm pool --size N --memory 1G");
    show(store, driver);
    return 0;
  }

 private:
  void show(const sessions::SessionStore& store, sessions::VmDriver& driver) {
    auto config = sessions::load_pool_config(store);
    auto slots = sessions::pool_status(store, driver);
    if (json_) {
      boost::json::array a;
      for (const auto& s : slots) {
        boost::json::object o{{"id", s.id}, {"state", sessions::to_string(s.health)}};
        o["pid"] = s.record && s.record->pid ? boost::json::value(*s.record->pid) : boost::json::value(nullptr);
        o["ssh_port"] = s.record ? boost::json::value(s.record->ssh_port) : boost::json::value(nullptr);
        if (s.record) {
          o["memory_mib"] = s.record->shape.memory_mib;
          o["cpus"] = s.record->shape.cpus;
          o["net"] = s.record->shape.net;
          o["image"] = s.record->shape.image;
          o["created"] = s.record->created;
        }
        o["pss_kib"] = s.memory ? boost::json::value(s.memory->pss_kib) : boost::json::value(nullptr);
        o["rss_kib"] = s.memory ? boost::json::value(s.memory->rss_kib) : boost::json::value(nullptr);
        a.push_back(o);
      }
      boost::json::object out{{"size", config.size},
                              {"memory_mib", config.shape.memory_mib},
                              {"cpus", config.shape.cpus},
                              {"net", config.shape.net},
                              {"image", config.shape.image},
                              {"vms", a}};
      print_json(std::cout, out);
      return;
    }
    std::cout << "pool size " << config.size << " (" << config.shape.image << ", " << config.shape.memory_mib
              << "M, " << config.shape.cpus << " cpus, net " << config.shape.net << ")\n";
    if (slots.empty()) return;
    std::printf("%-10s %-8s %-8s %-6s %-8s %-8s\n", "ID", "STATE", "PID", "PORT", "PSS", "RSS");
    for (const auto& s : slots) {
      std::string pid = s.record && s.record->pid ? std::to_string(*s.record->pid) : "-";
      std::string port = s.record && s.record->ssh_port ? std::to_string(s.record->ssh_port) : "-";
      std::printf("%-10s %-8s %-8s %-6s %-8s %-8s\n", s.id.c_str(), sessions::to_string(s.health), pid.c_str(),
                  port.c_str(), s.memory ? mib_text(s.memory->pss_kib).c_str() : "-",
                  s.memory ? mib_text(s.memory->rss_kib).c_str() : "-");
    }
  }

  std::optional<unsigned> size_;
  std::optional<std::string> memory_, net_;
  std::optional<unsigned> cpus_;
  bool refill_ = false;
  bool json_ = false;
};

}  // namespace

std::unique_ptr<Command> make_pool() { return std::make_unique<Pool>(); }

}  // namespace avm::cmd
