#!/usr/bin/env bash
# agent-vm pause / unpause on a real guest: list shows paused without asking
# the guest, the paused VM's vCPUs cost no host CPU, unpause sets the guest's
# clock (which stood still) to the host's, and agent-stop stops a paused VM
# cleanly by continuing it before the power button.
source "$AGENT_VM_SOURCE/tests/integration/lib.sh"

make_repo "$TEST_TMP/git/p.git"
serve_git "$TEST_TMP/git"

log "spawn"
agent-spawn --repo "git://127.0.0.1:$GIT_PORT/p.git" --agent-cmd "$STAND_IN" --memory 512M --json >"$TEST_TMP/s.json"
id=$(jq -r .id "$TEST_TMP/s.json")
pid=$(list_field "$id" .pid)
qga_sock="$AGENT_VM_SESSIONS/$id/run/qga.sock"

# QEMU's CPU time so far, utime+stime in clock ticks (fields 14 and 15 of
# /proc/PID/stat; the command name before them has no spaces: qemu-system-x86).
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
# The guest's clock minus the host's, in seconds, from one guest agent round
# trip (the host's time taken at its middle).
clock_offset() {
  local h0 g h1
  h0=$(date +%s%N)
  g=$(agent-vm qga "$qga_sock" guest-get-time)
  h1=$(date +%s%N)
  echo $(((g - (h0 + h1) / 2) / 1000000))  # milliseconds
}

before_ms=$(clock_offset)
log "guest clock before the pause: ${before_ms} ms from the host's"

# A running idle guest, for comparison in the log (its timer ticks, the
# stand-in agent): not asserted, the machine's load decides it.
t0=$(ticks); sleep 10; t1=$(ticks)
log "running, idle: $((t1 - t0)) ticks of QEMU CPU time in 10 s"

paused_at=$(date +%s%N)
expect_match "pause" "^$id paused$" "$(agent-vm pause "$id")"
expect_eq "list --json status" paused "$(list_field "$id" .status)"
expect_eq "list --json qmp_status" paused "$(list_field "$id" .qmp_status)"
# The guest agent was not asked (it would be "no answer" after its timeout).
expect_eq "list --json guest" "-" "$(list_field "$id" .guest)"
expect_eq "list --json agent" "-" "$(list_field "$id" .agent)"
expect_eq "list table status" paused "$(agent-list | awk -v id="$id" '$1 == id {print $2}')"
expect_eq "pause again: nothing to do" "$id is already paused; nothing to do" "$(agent-vm pause "$id")"
expect_eq "pause again --json" "false paused" "$(agent-vm pause --json "$id" | jq -r '.[0] | "\(.changed) \(.status)"')"
rc=0; agent-exec "$id" -- true 2>"$TEST_TMP/exec.err" || rc=$?
expect_eq "exec on a paused session" 125 "$rc"
expect_match "exec names the fix" "agent-vm unpause $id" "$(cat "$TEST_TMP/exec.err")"

# The vCPUs stand still. Measured on the 2-core test machine over 10 s: a
# running idle stand-in guest 43-49 ticks (0.43-0.49 s of CPU), paused 1
# tick (QEMU's main loop). The bound, 10 ticks (0.1 s), is 10x the paused
# figure and a quarter of the running one.
t0=$(ticks); sleep 10; t1=$(ticks)
paused_ticks=$((t1 - t0))
log "paused: $paused_ticks ticks of QEMU CPU time in 10 s"
[ "$paused_ticks" -le 10 ] || fail "a paused VM used $paused_ticks ticks in 10 s (bound 10): its vCPUs still run"

# 30 s paused in all, then unpause: the guest was behind by as long as it was
# paused, and is set to the host's clock.
while [ $(( ($(date +%s%N) - paused_at) / 1000000000 )) -lt 30 ]; do sleep 1; done
agent-vm unpause --json "$id" >"$TEST_TMP/u.json"
unpaused_at=$(date +%s%N)
paused_ms=$(((unpaused_at - paused_at) / 1000000))
expect_eq "unpause --json" "true running" "$(jq -r '.[0] | "\(.changed) \(.status)"' "$TEST_TMP/u.json")"
offset_ms=$(jq -r '.[0].clock_offset_seconds * 1000 | floor' "$TEST_TMP/u.json")
log "paused ${paused_ms} ms; the guest's clock was ${offset_ms} ms from the host's before unpause set it"
# Behind by the pause, within 3 s (the pause's own edges and round trips).
lag=$((before_ms - offset_ms - paused_ms))
[ "${lag#-}" -le 3000 ] || fail "the guest's clock moved by $((before_ms - offset_ms)) ms over a ${paused_ms} ms pause"
log "ok: the guest's clock stood still while paused (within ${lag} ms)"
after_ms=$(clock_offset)
[ "${after_ms#-}" -le 2000 ] || fail "after unpause the guest's clock is ${after_ms} ms from the host's"
log "ok: after unpause the guest's clock is ${after_ms} ms from the host's"
# And as a program in the guest sees it.
h0=$(date +%s); g=$(agent-exec "$id" -- date +%s); h1=$(date +%s)
[ "$g" -ge $((h0 - 2)) ] && [ "$g" -le $((h1 + 2)) ] || fail "guest date $g, host $h0..$h1"
log "ok: guest date $g within host $h0..$h1"
expect_eq "agent-exec works again" spawn "$(agent-exec "$id" -- cat .agent-vm-stand-in)"
expect_eq "unpause again: nothing to do" "$id is running, not paused; nothing to do" "$(agent-vm unpause "$id")"

log "stop from paused"
agent-vm pause "$id" >/dev/null
expect_eq "paused again" paused "$(list_field "$id" .status)"
agent-stop --json "$id" >"$TEST_TMP/stop.json"
expect_eq "stop method" guest-poweroff "$(jq -r '.[0].method' "$TEST_TMP/stop.json")"
expect_eq "stop steps" "cont, power button" "$(jq -r '.[0].steps' "$TEST_TMP/stop.json")"
expect_eq "stopped" stopped "$(list_field "$id" .status)"
rc=0; agent-vm pause "$id" 2>"$TEST_TMP/pause.err" || rc=$?
expect_eq "pause a stopped session" 1 "$rc"
expect_match "pause names the fix" "agent-resume $id" "$(cat "$TEST_TMP/pause.err")"
