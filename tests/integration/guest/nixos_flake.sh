#!/usr/bin/env bash
# The NixOS flake cannot be built here (Nix fetches nothing without network),
# so this checks what can be: every .nix file parses, the flake takes the
# initramfs, units, scripts, sshd config, kernel command line and opencode pin
# from guest/common (shared with the Debian image, never copied), and enables
# every shared unit.
set -euo pipefail
src=${AGENT_VM_SOURCE:?}
nixdir="$src/guest/nixos"
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v nix-instantiate >/dev/null || fail "nix-instantiate is missing: apt-get install nix-bin"

n=0
for f in "$nixdir"/*.nix; do
  nix-instantiate --parse "$f" >/dev/null 2>"$f.err.$$" || { cat "$f.err.$$" >&2; rm -f "$f.err.$$"; fail "$f does not parse"; }
  rm -f "$f.err.$$"
  n=$((n + 1))
done
[ "$n" -ge 3 ] || fail "expected flake.nix and its modules in $nixdir, found $n files"

all=$(cat "$nixdir"/*.nix)
grep -q 'common = \.\./common;' "$nixdir/flake.nix" || fail "flake.nix does not take guest/common"
for ref in '${common}/initramfs/make-initramfs' '${common}/rootfs/usr/libexec/agent-vm' \
           '${common}/rootfs/usr/lib/systemd' '${common}/rootfs/etc/ssh/sshd_config.d/agent-vm.conf' \
           '(common + "/opencode.pin")' '(common + "/cmdline")'; do
  grep -qF "$ref" <<<"$all" || fail "the flake does not use $ref"
done
# Each shared unit is enabled in the NixOS configuration, as in the Debian image.
# (Drop-in folders, NAME.d, change units systemd makes itself: nothing to enable.)
for unit in "$src"/guest/common/rootfs/usr/lib/systemd/system/*; do
  name=$(basename "$unit")
  [[ "$name" != *.d ]] || continue
  grep -qF "\"$name\"" "$nixdir/configuration.nix" || fail "configuration.nix does not enable $name"
  grep -qF "$name" "$src/guest/debian/customize" || fail "guest/debian/customize does not enable $name"
done
# NixOS' OpenSSH (9.8 and later) takes its host key once, at its start: the
# image says so, and a warm-pool claim restarts sshd on the session's key.
grep -qF 'environment.etc."agent-vm/sshd-reads-keys-at-start"' "$nixdir/configuration.nix" ||
  fail "configuration.nix does not declare agent-vm/sshd-reads-keys-at-start (NixOS' sshd reads its keys once)"
grep -qF '/etc/agent-vm/sshd-reads-keys-at-start' "$src/guest/common/rootfs/usr/libexec/agent-vm/setup" ||
  fail "setup does not read /etc/agent-vm/sshd-reads-keys-at-start"
# No shared script is duplicated under guest/nixos.
for script in "$src"/guest/common/rootfs/usr/libexec/agent-vm/* "$src"/guest/common/initramfs/init; do
  [ ! -e "$nixdir/$(basename "$script")" ] || fail "guest/nixos has its own copy of $(basename "$script")"
done
echo "$n passed, 0 failed"
