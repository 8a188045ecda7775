#!/usr/bin/env bash
# Concurrency, with real QEMUs:
#   20 spawns at once (while agent-list runs in a loop beside them): 20
#     distinct ids, 20 distinct ports (each QEMU forwards its own), every
#     meta.json whole, no list ever shows a half-made session;
#   stop, resume, list and exec of one session from several processes at
#     once, for several rounds: each command ends with a clear result (done,
#     or refused saying why), never hangs, and there is never more than one
#     QEMU for the session, the one its meta.json and agent-list name.
source "$AGENT_VM_SOURCE/tests/integration/reliability/rlib.sh"

setup_repo
N=20

log "$N spawns at once, agent-list running beside them"
touch "$TEST_TMP/watching"
(
  n=0
  while [ -e "$TEST_TMP/watching" ]; do
    out=$(agent-vm list --json --timeout 5000 2>&1) || { echo "list failed: $out"; continue; }
    jq -e 'type == "array" and all(.[]; .status != "corrupt")' <<<"$out" >/dev/null || echo "bad list: $out"
    n=$((n + 1))
  done
  echo "$n" >"$TEST_TMP/watch.count"
) >"$TEST_TMP/watch.err" 2>&1 &
watcher=$!
_bg_pids+=($watcher)
pids=()
for i in $(seq $N); do
  agent-spawn --repo "$REPO_URL" --agent-cmd "$STAND_IN" --memory 256M --cpus 1 --no-wait --json \
    >"$TEST_TMP/s$i.json" 2>"$TEST_TMP/s$i.err" &
  pids+=($!)
done
for i in $(seq $N); do
  wait "${pids[$((i - 1))]}" || { cat "$TEST_TMP/s$i.err" >&2; fail "spawn $i of $N failed"; }
done
rm "$TEST_TMP/watching"
wait "$watcher" || true
expect_eq "agent-list never showed a half-made or corrupt session" "" "$(cat "$TEST_TMP/watch.err")"
log "ok: agent-list ran $(cat "$TEST_TMP/watch.count") times during the spawns"

ids=$(jq -r .id "$TEST_TMP"/s*.json | sort)
ports=$(jq -r .ssh_port "$TEST_TMP"/s*.json | sort -n)
expect_eq "distinct ids" $N "$(sort -u <<<"$ids" | wc -l)"
expect_eq "distinct ports" $N "$(sort -u <<<"$ports" | wc -l)"
# What spawn said, what each meta.json says, and what each QEMU does, in one
# look each (the host is busy booting $N guests).
said=$(jq -r '[.id, .ssh_port] | @tsv' "$TEST_TMP"/s*.json | sort)
recorded=$(jq -r 'select(.schema == 1 and .qemu.pid > 0) | [.id, .ssh_port] | @tsv' "$AGENT_VM_SESSIONS"/*/meta.json | sort)
expect_eq "every meta.json whole, with the id, port and pid spawn reported" "$said" "$recorded"
qemus=$(ps -C qemu-system-x86_64 -o args= | sed -nE 's/.*-name agent-vm-([a-z0-9]+) .*hostfwd=tcp:127\.0\.0\.1:([0-9]+)-.*/\1\t\2/p' | sort)
expect_eq "one QEMU per session, forwarding the session's port" "$said" "$(grep -F -f <(cut -f1 <<<"$said") <<<"$qemus")"
out=$(agent-vm list --json --timeout 10000)
expect_eq "all $N listed" $N "$(jq length <<<"$out")"
expect_eq "all $N running" $N "$(jq '[.[] | select(.status == "running")] | length' <<<"$out")"
# shellcheck disable=SC2086
agent-rm --force $ids >/dev/null
for id in $ids; do expect_no_qemu "$id"; done
expect_eq "all removed" "[]" "$(agent-vm list --json | jq -c .)"

log "one session, many commands at once"
S=$(agent-spawn --repo "$REPO_URL" --agent-cmd "$STAND_IN" --memory 384M --no-wait -q)
cmds=(
  "agent-stop $S --timeout 4"
  "agent-stop $S --timeout 4 --json"
  "agent-resume $S --no-wait -q"
  "agent-resume $S --no-wait -q"
  "agent-vm list --json"
  "agent-vm list"
  "agent-exec $S --timeout 5 -- true"
  "agent-vm logs $S -n 3"
)
for round in 1 2 3; do
  pids=()
  for c in "${!cmds[@]}"; do
    # shellcheck disable=SC2086
    timeout 300 ${cmds[$c]} >"$TEST_TMP/c$c.out" 2>"$TEST_TMP/c$c.err" &
    pids+=($!)
  done
  for c in "${!cmds[@]}"; do
    set +e; wait "${pids[$c]}"; rc=$?; set -e
    err=$(cat "$TEST_TMP/c$c.err")
    [ $rc -ne 124 ] || fail "round $round: '${cmds[$c]}' hung"
    [[ "$err" != *"internal error"* ]] || fail "round $round: '${cmds[$c]}': $err"
    if [ $rc -ne 0 ]; then
      [[ "$err" == *"error:"* ]] || fail "round $round: '${cmds[$c]}' failed (exit $rc) without saying why: $err"
      log "round $round: '${cmds[$c]}' refused: $(grep -m1 'error:' <<<"$err")"
    fi
  done
  # One session, at most one QEMU, and the one everyone names.
  q=$(qemus_of "$S")
  st=$(list_field "$S" .status)
  case $(wc -w <<<"$q") in
    0) expect_match "round $round: no QEMU, listed" "^(stopped|crashed)$" "$st" ;;
    1) expect_eq "round $round: one QEMU, listed" running "$st"
       expect_eq "round $round: meta.json names it" "$q" "$(qemu_pid_of "$S")"
       expect_eq "round $round: list names it" "$q" "$(list_field "$S" .pid)" ;;
    *) fail "round $round: several QEMUs for $S: $q" ;;
  esac
  check_intact "$S"
done
agent-rm --force "$S" >/dev/null
expect_no_qemu "$S"
