#!/usr/bin/env bash
# VMs that do not cooperate, on a real guest:
#   a guest that ignores the power button: agent-stop escalates (second
#     press, then quit) and records the method;
#   a frozen QEMU (SIGSTOP): agent-list returns within its per-VM timeout
#     and shows it unresponsive, agent-exec gives up instead of hanging, and
#     agent-stop escalates to signals and ends it.
# After each, resume works.
source "$AGENT_VM_SOURCE/tests/integration/reliability/rlib.sh"

setup_repo
id=$(agent-spawn --repo "$REPO_URL" --agent-cmd "$STAND_IN" --memory 512M --no-wait -q)
wait_guest "$id" 300

log "a guest that ignores the power button"
agent-exec "$id" --root -- systemctl stop agent-vm-power-button.service
expect_eq "the guest's button handler is gone" inactive \
  "$(agent-exec "$id" --root -- systemctl is-active agent-vm-power-button.service || true)"
fault "power button ignored by the guest"
out=$(agent-stop "$id" --timeout 6 --json)
expect_eq "stop escalated to quit" quit "$(json '.[0].method' "$out")"
expect_eq "steps taken" "power button, power button again, quit" "$(json '.[0].steps' "$out")"
expect_eq "history records quit" quit "$(jq -r '.history[-1].how' "$(meta_of "$id")")"
expect_match "history says what was tried" "power button again, quit" "$(jq -r '.history[-1].detail' "$(meta_of "$id")")"
expect_eq "listed stopped" stopped "$(list_field "$id" .status)"
expect_match "listed with how it stopped" "last stop: quit" "$(list_field "$id" .detail)"
expect_no_qemu "$id"
check_intact "$id"

log "a frozen QEMU"
agent-resume "$id" --no-wait -q >/dev/null
pid=$(qemu_pid_of "$id")
expect_eq "running before the freeze" running "$(list_field "$id" .status)"
kill -STOP "$pid"
fault "SIGSTOP of QEMU"
# A deadline far above the per-VM timeout: the list must come back, not hang.
out=$(timeout 60 agent-vm list --json --timeout 1500) || fail "agent-list did not return with a frozen VM"
expect_eq "listed unresponsive" unresponsive "$(jq -r --arg id "$id" '.[] | select(.id==$id) | .status' <<<"$out")"
expect_match "and why" "SIGSTOP" "$(jq -r --arg id "$id" '.[] | select(.id==$id) | .detail' <<<"$out")"
table=$(timeout 60 agent-list --timeout 1500) || fail "agent-list (table) did not return"
expect_match "the table says so too" "$id +unresponsive" "$table"
set +e
timeout 120 agent-exec "$id" --timeout 5 -- true 2>"$TEST_TMP/exec.err"
rc=$?
set -e
expect_eq "agent-exec gives up on a frozen VM" 125 "$rc"
log "ok: agent-exec said: $(head -n1 "$TEST_TMP/exec.err")"
out=$(agent-stop "$id" --timeout 4 --json)
expect_match "stop escalated to a signal" "^(sigterm|sigkill)$" "$(json '.[0].method' "$out")"
expect_match "steps taken" "SIGTERM" "$(json '.[0].steps' "$out")"
expect_match "history records it" "^(sigterm|sigkill)$" "$(jq -r '.history[-1].how' "$(meta_of "$id")")"
wait_gone "$pid" 10
expect_no_qemu "$id"
expect_eq "listed stopped" stopped "$(list_field "$id" .status)"
check_intact "$id"

log "resume after both"
agent-resume "$id" --no-wait -q >/dev/null
expect_eq "running again" running "$(list_field "$id" .status)"
agent-rm --force "$id" >/dev/null
expect_no_qemu "$id"
