#include "commands/common.h"

#include <boost/json.hpp>
#include <iostream>

#include "commands/render.h"
#include "launcher/ports.h"
#include "launcher/vm_spec.h"
#include "util/error.h"
#include "util/strings.h"

namespace avm::cmd {

namespace json = boost::json;

sessions::SessionStore open_store() { return sessions::SessionStore::open_default(); }

json::object to_json(const sessions::StartResult& r) {
  json::object o;
  o["id"] = r.id;
  o["ssh_port"] = r.ssh_port;
  o["accel"] = r.accel;
  o["accel_reason"] = r.accel_reason;
  o["ready"] = r.ready;
  json::object t;
  for (const auto& [check, at] : r.timings) t[check] = static_cast<double>(at.count()) / 1000.0;
  o["ready_after_seconds"] = t;
  json::object ph;
  for (const auto& [phase, took] : r.phases) ph[phase] = static_cast<double>(took.count()) / 1000.0;
  o["phase_seconds"] = ph;
  o["attach"] = "agent-attach " + r.id;
  return o;
}

void print_started(const sessions::StartResult& r, bool json_out, bool quiet, const char* verb) {
  if (json_out) {
    print_json(std::cout, to_json(r));
    return;
  }
  if (quiet) {
    std::cout << r.id << "\n";
    return;
  }
  std::cout << "session " << r.id << " " << verb << (r.ready ? ", agent running" : " (not waiting for the guest)")
            << "\n"
            << "  ssh:     127.0.0.1:" << r.ssh_port << "\n"
            << "  accel:   " << r.accel_reason << "\n"
            << "  attach:  agent-attach " << r.id << "   (Ctrl+B, D detaches; the agent keeps running)\n"
            << "  stop:    agent-stop " << r.id << "\n";
}

sessions::StartOptions StartFlags::to_options() const {
  sessions::StartOptions o;
  if (port) o.port = launcher::parse_port(*port);
  o.accel = accel;
  if (memory) {
    o.memory_mib = parse_mib(*memory);
    launcher::check_memory_mib(*o.memory_mib, *memory);
  }
  if (cpus) {
    launcher::check_cpus(*cpus);
    o.cpus = cpus;
  }
  o.image = image;
  o.wait = !no_wait;
  o.boot_timeout = std::chrono::seconds(timeout_s);
  return o;
}

}  // namespace avm::cmd
