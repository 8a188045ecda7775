// What a session's VM is, derived from the session alone: its name, its
// QEMU spec, where to find it once running. Pure functions: no I/O, so every
// field is unit-tested without QEMU.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "launcher/vm.h"
#include "launcher/vm_spec.h"
#include "sessions/meta.h"
#include "sessions/store.h"

namespace avm::sessions {

// The VM name of a session: "agent-vm-<id>", in ps and QMP query-name.
std::string vm_name(const std::string& id);
// The id the session's QEMU runs under: the session's own, or the warm-pool
// slot's whose VM a resume took (meta.json's qemu.vm_id).
std::string vm_id_of(const Meta& m);

// A session's --net value: restricted (or the older "default"), full, none.
// avm::Error naming the choices otherwise.
launcher::NetMode net_mode(const std::string& s);

// What the host contributes to a VM besides the session: the image's files,
// QEMU, the accelerator and what it needs.
struct HostFacts {
  std::filesystem::path kernel, initrd, rootfs;
  std::string cmdline;                  // the image's kernel command line
  std::string qemu = "qemu-system-x86_64";
  launcher::GuestArch arch = launcher::GuestArch::X86_64;  // the image's
  bool qemu_sandbox = false;            // QEMU accepts -sandbox on
  launcher::Accel accel = launcher::Accel::Tcg;
  std::optional<unsigned long> tsc_khz;  // used under TCG only
  unsigned uid = 0;                     // who runs QEMU: decides the share model
  std::filesystem::path self_exe;       // this program, for the per-connection helpers
  // The guest returns its free memory to the host (virtio-balloon free page
  // reporting); AGENT_VM_FREE_PAGE_REPORTING=off turns it off.
  bool free_page_reporting = true;
};

// AGENT_VM_FREE_PAGE_REPORTING's value: unset, empty, "on" or "1" is on;
// "off" or "0" is off; anything else is an avm::Error naming the choices.
bool free_page_reporting_from_env(const char* value);

// The spec that boots session `m` from folder `p` with SSH on `ssh_port`.
launcher::VmSpec session_vm_spec(const Meta& m, const SessionPaths& p, const HostFacts& host,
                                 std::uint16_t ssh_port);

// The helpers QEMU runs per guest connection: the egress proxy (restricted
// networking) and the model gateway (restricted and full). Their command
// lines name only the session's host-only folder, where they read their
// settings (the allowlist, the upstream, the key, the budget) and write
// their logs: nothing of it is in the guest-writable share.
std::vector<std::string> egress_command(const SessionPaths& p, const std::filesystem::path& self_exe);
std::vector<std::string> gateway_command(const SessionPaths& p, const std::filesystem::path& self_exe);

// Where the session's VM is found while it runs (from meta.json's pid).
launcher::VmHandle vm_handle(const Meta& m, const SessionPaths& p);

}  // namespace avm::sessions
