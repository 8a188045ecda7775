#!/usr/bin/env bash
# SIGKILL at each step of a session's life, on a real guest:
#   agent-spawn itself killed while its VM boots (the VM is still found);
#   QEMU killed during boot, while running, and during agent-stop.
# After each: agent-list tells the truth at once, agent-stop and
# agent-resume work, and the session folder is whole (meta.json, clone,
# keys, what the guest wrote before the kill).
source "$AGENT_VM_SOURCE/tests/integration/reliability/rlib.sh"

setup_repo
how_last() { jq -r '.history[-1].how' "$(meta_of "$1")"; }

log "agent-spawn killed while its VM boots"
agent-spawn --repo "$REPO_URL" --agent-cmd "$STAND_IN" --memory 512M --json >"$TEST_TMP/spawn.json" 2>/dev/null &
spawner=$!
deadline=$((SECONDS + 60))
until id=$(ls "$AGENT_VM_SESSIONS" 2>/dev/null | grep -v '^\.' | head -n1) && [ -n "$id" ] && [ -n "$(qemu_pid_of "$id" 2>/dev/null)" ]; do
  [ $SECONDS -lt $deadline ] || fail "spawn never recorded QEMU's pid"
  sleep 0.05
done
kill -9 "$spawner"
fault "SIGKILL of agent-spawn during boot"
wait "$spawner" 2>/dev/null || true
pid=$(qemu_pid_of "$id")
expect_match "QEMU lives on" "^[0-9]+$" "$(qemus_of "$id")"
expect_eq "listed as QEMU says, not as a crash" running "$(list_field "$id" .status)"
expect_eq "listed pid is QEMU's" "$pid" "$(list_field "$id" .pid)"

log "QEMU killed during boot"
kill -9 "$pid"
fault "SIGKILL of QEMU during boot"
wait_gone "$pid" 10
expect_eq "crashed at once" crashed "$(list_field "$id" .status)"
expect_eq "no pid listed" null "$(list_field "$id" .pid)"
check_intact "$id"
expect_match "stop of the crashed session" "is not running; nothing to do" "$(agent-stop "$id")"
expect_eq "the crash is recorded" crash "$(how_last "$id")"
expect_eq "stopped once the crash is recorded" stopped "$(list_field "$id" .status)"

log "QEMU killed while running"
agent-resume "$id" --no-wait -q >/dev/null
wait_guest "$id" 300
agent-exec "$id" -- sh -c 'echo written-before-the-kill >work.txt && sync'
pid=$(qemu_pid_of "$id")
kill -9 "$pid"
fault "SIGKILL of QEMU while running"
wait_gone "$pid" 10
expect_eq "crashed at once" crashed "$(list_field "$id" .status)"
expect_eq "nothing answers" "-" "$(list_field "$id" .guest)"
check_intact "$id"
expect_eq "what the guest wrote survives" written-before-the-kill "$(cat "$AGENT_VM_SESSIONS/$id/repo/work.txt")"
expect_eq "exec says it is not running" 125 "$(agent-exec "$id" -- true 2>/dev/null; echo $?)"
expect_match "stop of the crashed session" "nothing to do" "$(agent-stop "$id")"
expect_eq "the crash is recorded" crash "$(how_last "$id")"

log "QEMU killed during agent-stop"
agent-resume "$id" --no-wait -q >/dev/null
wait_guest "$id" 300
pid=$(qemu_pid_of "$id")
console="$AGENT_VM_SESSIONS/$id/run/console.log"
agent-stop "$id" --timeout 120 --json >"$TEST_TMP/stop.json" 2>"$TEST_TMP/stop.err" &
stopper=$!
# The guest has seen the power button and is shutting down.
wait_file_match "$console" "power button pressed" 60
kill -9 "$pid"
fault "SIGKILL of QEMU during agent-stop"
wait "$stopper" || { cat "$TEST_TMP/stop.err" >&2; fail "agent-stop failed when QEMU was killed under it"; }
method=$(jq -r '.[0].method' "$TEST_TMP/stop.json")
expect_match "stop says how it ended" "^(exited|guest-poweroff)$" "$method"
expect_match "history says the same" "^(crash|guest-poweroff)$" "$(how_last "$id")"
[ "$method" = exited ] && expect_eq "a kill before the guest's shutdown is a crash" crash "$(how_last "$id")"
expect_eq "stopped" stopped "$(list_field "$id" .status)"
expect_no_qemu "$id"
check_intact "$id"

log "resume after all that, and a clean stop"
agent-resume "$id" --no-wait -q >/dev/null
wait_guest "$id" 300
expect_eq "running again" running "$(list_field "$id" .status)"
expect_eq "the guest still sees its work" written-before-the-kill "$(agent-exec "$id" -- cat work.txt)"
expect_eq "a clean stop after the faults" guest-poweroff "$(agent-stop "$id" --json | jq -r '.[0].method')"
expect_eq "runs recorded: crash, crash, killed stop, clean stop" 4 "$(jq '.history | length' "$(meta_of "$id")")"
check_intact "$id"
expect_no_qemu "$id"
