#!/usr/bin/env bash
# A pool of 5 and 20 concurrent agent-spawn --no-wait: 20 distinct sessions,
# no QEMU shared by two of them, 5 of them on pooled VMs; then all go.
source "$AGENT_VM_SOURCE/tests/integration/lib.sh"

make_repo "$TEST_TMP/git/project.git"
serve_git "$TEST_TMP/git"
REPO="git://127.0.0.1:$GIT_PORT/project.git"
MEM=384M
N=20

log "pool --size 5"
agent-vm pool --size 5 --memory "$MEM" >/dev/null || fail "pool --size 5 failed"
expect_eq "ready VMs" 5 "$(agent-vm pool --json | jq '[.vms[] | select(.state=="ready")] | length')"
pooled=$(agent-vm pool --json | jq -r '.vms[].pid' | sort)

log "$N spawns at once"
pids=()
for i in $(seq 1 $N); do
  agent-spawn --repo "$REPO" --agent-cmd "$STAND_IN" --memory "$MEM" --no-wait --json >"$TEST_TMP/s$i.json" 2>"$TEST_TMP/s$i.err" &
  pids+=($!)
done
for i in $(seq 1 $N); do
  wait "${pids[$((i - 1))]}" || { cat "$TEST_TMP/s$i.err" >&2; fail "spawn $i failed"; }
done
ids=$(for i in $(seq 1 $N); do jq -r .id "$TEST_TMP/s$i.json"; done | sort)
expect_eq "distinct sessions" $N "$(sort -u <<<"$ids" | wc -l)"
listed=$(agent-vm list --json)
qpids=$(for id in $ids; do jq -r --arg id "$id" '.[] | select(.id==$id) | .pid' <<<"$listed"; done)
expect_eq "every session has a QEMU" $N "$(grep -c '^[0-9]\+$' <<<"$qpids")"
expect_eq "no QEMU shared by two sessions" $N "$(sort -u <<<"$qpids" | wc -l)"
# On a pooled VM: took one, and its claim did not fall back to a cold boot.
from_pool=$(for i in $(seq 1 $N); do jq -r '.phase_seconds | has("pool") and (has("pool-failed") | not)' "$TEST_TMP/s$i.json"; done | grep -c true || true)
grep -h "^warning:" "$TEST_TMP"/s*.err >&2 || true
if [ "$from_pool" -lt 5 ]; then
  for i in $(seq 1 $N); do jq -c '{id, phase_seconds}' "$TEST_TMP/s$i.json" >&2; done
  agent-vm pool --json >&2 || true
fi
# A replacement that is ready before the last spawn takes its VM may serve one more.
[ "$from_pool" -ge 5 ] || fail "only $from_pool sessions on pooled VMs, expected at least 5"
log "ok: $from_pool sessions on pooled VMs"
expect_eq "the pooled QEMUs are sessions' now" "$pooled" "$(grep -xF -f <(echo "$pooled") <<<"$qpids" | sort || true)"

log "clean up"
agent-vm pool --size 0 >/dev/null
agent-rm --force $ids >/dev/null
expect_eq "no session left" 0 "$(agent-vm list --json | jq length)"
expect_eq "no QEMU of this test left" "" "$(pgrep -f -- "$AGENT_VM_SESSIONS" || true)"
