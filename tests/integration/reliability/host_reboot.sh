#!/usr/bin/env bash
# The host "reboots": every QEMU is gone at once, the pid files, sockets,
# port reservations and lock files are left behind, and the recorded pids
# now belong to other processes (one of them even carries the VM's name on
# its command line). agent-list shows the sessions crashed, never running;
# no stranger is signalled; resume works and keeps each session's port.
source "$AGENT_VM_SOURCE/tests/integration/reliability/rlib.sh"

setup_repo
agent-spawn --repo "$REPO_URL" --agent-cmd "$STAND_IN" --memory 384M --no-wait --json >"$TEST_TMP/a.json" &
pa=$!
agent-spawn --repo "$REPO_URL" --agent-cmd "$STAND_IN" --memory 384M --no-wait --json >"$TEST_TMP/b.json" &
pb=$!
wait $pa || fail "spawn a failed"
wait $pb || fail "spawn b failed"
A=$(jq -r .id "$TEST_TMP/a.json"); B=$(jq -r .id "$TEST_TMP/b.json")
A_PORT=$(jq -r .ssh_port "$TEST_TMP/a.json"); B_PORT=$(jq -r .ssh_port "$TEST_TMP/b.json")
wait_guest "$A" 300
agent-exec "$A" -- sh -c 'echo before-the-reboot >work.txt && sync'

log "power cut: every QEMU of this host gone at once"
pids="$(qemu_pid_of "$A") $(qemu_pid_of "$B")"
# shellcheck disable=SC2086
kill -9 $pids
fault "all QEMUs killed at once (host reboot)"
for p in $pids; do wait_gone "$p" 10; done
for id in $A $B; do
  for f in run/qemu.pid run/qmp.sock run/qga.sock run/qmp-observe.sock; do
    [ -e "$AGENT_VM_SESSIONS/$id/$f" ] || fail "$id/$f should be left behind, as after a reboot"
  done
done

# After a reboot the recorded pids are other processes': a stranger that even
# carries A's VM name, and a plain one for B.
python3 -c 'import time; time.sleep(600)' -name "agent-vm-$A" &
decoy_a=$!
_bg_pids+=($decoy_a)
sleep 600 &
decoy_b=$!
_bg_pids+=($decoy_b)
repoint() {  # the recorded pid becomes $2, as meta.json is written: whole
  local m
  m=$(meta_of "$1")
  jq --argjson p "$2" '.qemu.pid = $p' "$m" >"$m.new" && chmod 0600 "$m.new" && mv "$m.new" "$m"
}
repoint "$A" "$decoy_a"
repoint "$B" "$decoy_b"
fault "recorded pids reused by other processes"

log "after the reboot"
expect_eq "A listed crashed" crashed "$(list_field "$A" .status)"
expect_eq "B listed crashed" crashed "$(list_field "$B" .status)"
expect_eq "A lists no pid" null "$(list_field "$A" .pid)"
expect_match "stop of A does nothing" "nothing to do" "$(agent-stop "$A")"
expect_eq "exec on B refuses (not running)" 125 "$(agent-exec "$B" -- true 2>/dev/null; echo $?)"
kill -0 "$decoy_a" 2>/dev/null || fail "the stranger with A's name was signalled"
kill -0 "$decoy_b" 2>/dev/null || fail "the stranger at B's pid was signalled"
log "ok: no stranger was signalled"
expect_eq "A's crash recorded" crash "$(jq -r '.history[-1].how' "$(meta_of "$A")")"
check_intact "$A"
check_intact "$B"

log "resume both"
agent-resume "$A" --no-wait --json >"$TEST_TMP/ra.json" &
pa=$!
agent-resume "$B" --no-wait --json >"$TEST_TMP/rb.json" &
pb=$!
wait $pa || fail "resume of A failed"
wait $pb || fail "resume of B failed"
# Each keeps its port, unless another process took it meanwhile (other VMs
# run on this host too).
port_kept() {
  if [ "$2" = "$3" ]; then log "ok: $1 keeps its port $2"; return; fi
  ss -ltnH "sport = :$2" | grep -q . || fail "$1 moved from port $2 to $3, yet $2 is free"
  log "ok: $1's port $2 was taken meanwhile by another process; it moved to $3"
}
port_kept A "$A_PORT" "$(jq -r .ssh_port "$TEST_TMP/ra.json")"
port_kept B "$B_PORT" "$(jq -r .ssh_port "$TEST_TMP/rb.json")"
expect_eq "A running" running "$(list_field "$A" .status)"
expect_eq "B running" running "$(list_field "$B" .status)"
wait_guest "$A" 300
expect_eq "A's guest sees its work" before-the-reboot "$(agent-exec "$A" -- cat work.txt)"
kill -0 "$decoy_a" 2>/dev/null || fail "resume signalled the stranger with A's name"
kill "$decoy_a" "$decoy_b"
agent-rm --force "$A" "$B" >/dev/null
expect_no_qemu "$A"
expect_no_qemu "$B"
