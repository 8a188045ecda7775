// Small pieces every session command shares.
#pragma once

#include <boost/json/object.hpp>
#include <chrono>
#include <optional>
#include <string>

#include "sessions/lifecycle.h"
#include "sessions/store.h"

namespace avm::cmd {

// The store at $AGENT_VM_SESSIONS (default ~/.agent-vm/sessions).
sessions::SessionStore open_store();

// What spawn and resume print: the id, the port and how to reach it.
void print_started(const sessions::StartResult& r, bool json, bool quiet, const char* verb);
boost::json::object to_json(const sessions::StartResult& r);

// "--memory 2G" etc. into StartOptions.
struct StartFlags {
  std::optional<std::string> port, accel, memory, image;
  std::optional<unsigned> cpus;
  bool no_wait = false;
  unsigned timeout_s = static_cast<unsigned>(sessions::kDefaultBootTimeout.count());
  sessions::StartOptions to_options() const;
};

}  // namespace avm::cmd
