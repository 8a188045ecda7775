#!/usr/bin/env bash
# The warm pool, on real guests with the stand-in agent:
#   pool --size 2 -> two ready VMs (pool --json; sshd up, letting no key in)
#   -> spawn takes one (phases say pool; the session's own files, host key,
#   env and allowlist) -> a
#   replacement boots (back to 2) -> kill -9 of a pooled QEMU: the next
#   spawn skips it and it is replaced -> a spawn killed between its take and
#   its claim: the next pool run stops that VM -> the first session stopped
#   and resumed: it takes a pooled VM too, though its waiting agent was
#   killed (same id, files, keys, allowlist; the agent resumes; list and stop
#   treat it as any session) -> pool --size 0
#   leaves no QEMU; agent-list never shows a pooled VM.
# Needs an image whose guest knows the pool (libexec/agent-vm/claim).
source "$AGENT_VM_SOURCE/tests/integration/lib.sh"

make_repo "$TEST_TMP/git/project.git"
serve_git "$TEST_TMP/git"
REPO="git://127.0.0.1:$GIT_PORT/project.git"
MEM=512M

# pool_ready <n> <seconds>: until pool --json shows n ready VMs.
pool_ready() {
  local deadline=$((SECONDS + $2)) got
  until got=$(agent-vm pool --json | jq '[.vms[] | select(.state=="ready")] | length'); [ "$got" = "$1" ]; do
    [ $SECONDS -lt $deadline ] || { agent-vm pool >&2; fail "pool has $got ready VMs after $2s, expected $1"; }
    sleep 1
  done
  log "ok: $1 ready in the pool"
}
pooled_pids() { agent-vm pool --json | jq -r '.vms[].pid // empty' | sort; }
# The session's own files, env, client key and pinned host key on the VM it
# runs on: after the pooled spawn, and again after the warm resume.
# $1: what the check follows ("spawn" or "resume": the stand-in's screen).
check_own_session() {
  local when=$1 port S kh
  expect_eq "the session's repo ($when)" README "$(agent-exec "$id" -- ls /session/repo)"
  expect_eq "the session's env ($when)" "$POOL_TEST_VAR" "$(agent-exec "$id" -- sh -c 'echo $POOL_TEST_VAR')"
  expect_eq "no pool-slot marker left ($when)" absent \
    "$(agent-exec "$id" --root -- sh -c '[ -e /session/pool-slot ] && echo present || echo absent')"
  # run/ (QEMU's sockets, hidden since the pooled boot) and meta.json (at the
  # claim) are empty even to root in the guest.
  expect_eq "host-only run/ and meta.json hidden ($when)" "0 0" \
    "$(agent-exec "$id" --root -- sh -c 'echo "$(ls -A /session/run | wc -l) $(wc -c </session/meta.json)"')"
  expect_eq "its own client key ($when)" "$id" \
    "$(agent-exec "$id" --root -- sh -c 'grep -o "agent-vm session [a-z0-9]*" /session/ssh/authorized_keys | cut -d" " -f3')"
  drv new-session -d -s "att-$when" -x 100 -y 30 "agent-attach $id; echo attach-exit=\$?; sleep 600"
  wait_screen "att-$when" "agent-vm stand-in agent \($when\)" 60
  drv send-keys -t "att-$when" C-b d
  wait_screen "att-$when" "attach-exit=0" 30
  drv kill-session -t "att-$when"
  log "ok: attach (pinned host key) shows the agent ($when)"
  port=$(list_field "$id" .ssh_port)
  S="$AGENT_VM_SESSIONS/$id/ssh"
  kh="$TEST_TMP/known_hosts"
  echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$S/ssh_host_ed25519_key.pub")" >"$kh"
  expect_eq "ssh with StrictHostKeyChecking against the session's key ($when)" pinned-ok \
    "$(ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$kh" -o IdentitiesOnly=yes \
        -i "$S/id_ed25519" -p "$port" agent@127.0.0.1 echo pinned-ok 2>"$TEST_TMP/ssh.err" || cat "$TEST_TMP/ssh.err" >&2)"
}

log "pool --size 2"
agent-vm pool --size 2 --memory "$MEM" >"$TEST_TMP/pool.out" || { cat "$TEST_TMP/pool.out" >&2; fail "pool --size 2 failed"; }
pj=$(agent-vm pool --json)
expect_eq "configured size" 2 "$(json .size "$pj")"
expect_eq "ready VMs" "ready ready" "$(json '[.vms[].state] | join(" ")' "$pj")"
expect_match "PSS of a pooled QEMU" '^[0-9]+$' "$(json '.vms[0].pss_kib' "$pj")"
expect_match "RSS of a pooled QEMU" '^[0-9]+$' "$(json '.vms[0].rss_kib' "$pj")"
expect_eq "agent-list shows no pooled VM" 0 "$(agent-vm list --json | jq length)"
before=$(pooled_pids)

# A pooled VM's sshd already listens (the claim only swaps its keys) and lets
# no one in: no client key is authorized before a session claims the VM.
pport=$(json '.vms[0].ssh_port' "$pj")
ssh-keygen -q -t ed25519 -N '' -f "$TEST_TMP/stranger" </dev/null
ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes \
    -o ConnectTimeout=20 -i "$TEST_TMP/stranger" -p "$pport" agent@127.0.0.1 true 2>"$TEST_TMP/stranger.err" &&
  fail "a key of no session logged in to a pooled VM"
expect_match "a pooled VM's sshd refuses every key" "Permission denied" "$(cat "$TEST_TMP/stranger.err")"

log "spawn from the pool (restricted, one allowed host, one env variable)"
export POOL_TEST_VAR="from-the-session-$RANDOM"
out=$(agent-spawn --repo "$REPO" --agent-cmd "$STAND_IN" --memory "$MEM" --env POOL_TEST_VAR \
        --allow-host pkg.agent-vm.test --json)
id=$(json .id "$out")
expect_eq "spawn reports ready" true "$(json .ready "$out")"
expect_eq "phases say pool" true "$(json '.phase_seconds | has("pool")' "$out")"
pid=$(list_field "$id" .pid)
grep -qx "$pid" <<<"$before" || fail "session $id runs QEMU $pid, not one of the pooled ones ($before)"
log "ok: session $id took pooled QEMU $pid"
expect_eq "status" running "$(list_field "$id" .status)"
expect_eq "agent" running "$(list_field "$id" .agent)"
expect_eq "stand-in marker" spawn "$(agent-exec "$id" -- cat .agent-vm-stand-in)"
log "the session's files, keys and pinned host key"
check_own_session spawn

log "the session's egress policy: an allowed host passes the allowlist, another is denied"
verdict_of() {
  local v deadline=$((SECONDS + 30))
  until v=$(agent-logs --net --json "$1" | jq -r --arg t "$2" 'select(.source=="egress" and .target==$t) | "\(.verdict): \(.reason)"' | head -1)
        [ -n "$v" ] || [ $SECONDS -ge $deadline ]; do sleep 0.1; done
  echo "$v"
}
agent-exec "$id" -- curl -sS -m 20 -p -o /dev/null https://other.agent-vm.test/ >/dev/null 2>&1 || true
expect_match "a host not on the list is denied" "^denied: not on the allowlist" "$(verdict_of "$id" "other.agent-vm.test:443")"
agent-exec "$id" -- curl -sS -m 20 -p -o /dev/null https://pkg.agent-vm.test/ >/dev/null 2>&1 || true
allowed=$(verdict_of "$id" "pkg.agent-vm.test:443")
[ -n "$allowed" ] || fail "no egress verdict for the allowed host"
[[ "$allowed" != "denied: not on the allowlist"* ]] || fail "the allowed host was refused: $allowed"
log "ok: the allowed host passed the allowlist ($allowed)"
[ -s "$AGENT_VM_SESSIONS/.host/$id/egress.log" ] || fail "no egress log in the session's host-only folder"

log "a replacement boots"
pool_ready 2 300
expect_eq "agent-list shows only the session" "$id" "$(agent-vm list --json | jq -r '.[].id' | tr '\n' ' ' | sed 's/ $//')"

log "kill -9 a pooled QEMU: the next spawn skips it"
victim=$(pooled_pids | head -1)
kill -9 "$victim"
out2=$(agent-spawn --repo "$REPO" --agent-cmd "$STAND_IN" --memory "$MEM" --json)
id2=$(json .id "$out2")
pid2=$(list_field "$id2" .pid)
[ "$pid2" != "$victim" ] || fail "the killed QEMU was handed out"
expect_eq "second session running" running "$(list_field "$id2" .status)"
expect_eq "second session's agent" running "$(list_field "$id2" .agent)"
expect_eq "second session's repo" README "$(agent-exec "$id2" -- ls /session/repo)"
pool_ready 2 400
pooled_pids | grep -qx "$victim" && fail "the killed QEMU $victim is still listed"
log "ok: the killed VM is gone from the pool and replaced"

log "a spawn killed after taking a VM, before its claim: the next pool run stops that VM"
# A git server that accepts and never answers holds the spawn in its clone,
# after the take.
python3 -c '
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
print(s.getsockname()[1], flush=True)
held = []
while True: held.append(s.accept())' >"$TEST_TMP/silent.port" &
silent=$!
_bg_pids+=("$silent")
wait_file_nonempty() { local d=$((SECONDS + 20)); until [ -s "$1" ]; do [ $SECONDS -lt $d ] || fail "$1 stayed empty"; sleep 0.1; done; }
wait_file_nonempty "$TEST_TMP/silent.port"
agent-spawn --repo "git://127.0.0.1:$(cat "$TEST_TMP/silent.port")/held.git" --agent-cmd "$STAND_IN" \
  --memory "$MEM" -q >/dev/null 2>&1 &
held=$!
_bg_pids+=("$held")
deadline=$((SECONDS + 60))
until taken=$(ls -d "$AGENT_VM_SESSIONS/.pool/.taken-"* 2>/dev/null | head -1); [ -n "$taken" ]; do
  [ $SECONDS -lt $deadline ] || fail "the held spawn never took a pooled VM"
  sleep 0.1
done
tid=${taken##*/.taken-}
tpid=$(jq -r .pid "$AGENT_VM_SESSIONS/.pool/.host/$tid/slot.json")
expect_eq "the take is recorded as the spawn's" "taken $held" \
  "$(jq -r '"\(.state) \(.owner_pid)"' "$AGENT_VM_SESSIONS/.pool/.host/$tid/slot.json")"
kill -9 "$held"
wait "$held" 2>/dev/null || true
kill "$silent"
agent-vm pool --size 2 --memory "$MEM" >/dev/null 2>"$TEST_TMP/sweep.err" || { cat "$TEST_TMP/sweep.err" >&2; fail "pool --size 2"; }
expect_match "the sweep says so" "pool VM $tid was taken by a spawn that ended before its claim" "$(cat "$TEST_TMP/sweep.err")"
[ ! -e "$taken" ] || fail "the abandoned take $taken is still there"
[ ! -e "$AGENT_VM_SESSIONS/.pool/.host/$tid" ] || fail "the abandoned take's record is still there"
if kill -0 "$tpid" 2>/dev/null && [ "$(awk '{print $3}' /proc/$tpid/stat 2>/dev/null)" != Z ]; then
  fail "the abandoned take's QEMU $tpid still runs"
fi
expect_eq "no session made of it" "$(printf '%s\n' "$id" "$id2" | sort | paste -sd' ')" \
  "$(agent-vm list --json | jq -r '[.[].id] | sort | join(" ")')"
log "ok: the abandoned take and its QEMU are gone"

log "stop the first session and resume it: it takes a pooled VM too"
agent-stop "$id" >/dev/null
ready=$(agent-vm pool --json | jq -r '.vms[] | select(.state=="ready") | .pid' | sort)
[ -n "$ready" ] || fail "no ready pooled VM to resume on"
# Every ready pooled VM loses its waiting agent (agent-run, whose pid it left
# in /run/agent-vm/agent/waiting): the claim must start the agent again, not
# wake a pane that is gone and leave the resume waiting.
for sock in "$AGENT_VM_SESSIONS"/.pool/*/run/qga.sock; do
  gx=$(agent-vm qga -c "$sock" guest-exec \
    '{"path":"/bin/sh","arg":["-c","p=$(cat /run/agent-vm/agent/waiting) && kill $p && while kill -0 $p 2>/dev/null; do sleep 0.05; done"],"capture-output":true}' |
    jq -r .pid)
  deadline=$((SECONDS + 60))
  until st=$(agent-vm qga -c "$sock" guest-exec-status "{\"pid\":$gx}"); [ "$(jq -r .exited <<<"$st")" = true ]; do
    [ $SECONDS -lt $deadline ] || fail "the pooled agent behind $sock did not end"
    sleep 0.1
  done
  expect_eq "the pooled agent behind $sock ended" 0 "$(jq -r .exitcode <<<"$st")"
done
out3=$(agent-resume "$id" --json)
expect_eq "resume reports ready" true "$(json .ready "$out3")"
expect_eq "the same session" "$id" "$(json .id "$out3")"
expect_eq "resume's phases say pool, without a fallback" true \
  "$(json '.phase_seconds | has("pool") and (has("pool-failed") | not)' "$out3")"
rpid=$(list_field "$id" .pid)
grep -qx "$rpid" <<<"$ready" || fail "resumed session $id runs QEMU $rpid, not one of the ready pooled ones ($ready)"
agent-vm pool --json | jq -r '.vms[].pid // empty' | grep -qx "$rpid" && fail "QEMU $rpid is still listed in the pool"
vmid=$(jq -r .qemu.vm_id "$AGENT_VM_SESSIONS/$id/meta.json")
expect_match "meta.json names the slot the VM runs under" '^[a-z0-9]+$' "$vmid"
[ "$vmid" != "$id" ] || fail "the resumed VM runs under the session's own id"
expect_eq "that VM is QEMU $rpid" "$rpid" "$(pgrep -f -- "-name agent-vm-$vmid( |,|\$)" || true)"
log "ok: session $id resumed on pooled QEMU $rpid (slot $vmid)"
expect_eq "status after resume" running "$(list_field "$id" .status)"
expect_eq "agent after resume" running "$(list_field "$id" .agent)"
expect_eq "the agent resumed" "spawn stopped resume" \
  "$(agent-exec "$id" -- cat .agent-vm-stand-in | tr '\n' ' ' | sed 's/ $//')"
check_own_session resume
# The slot's egress proxy reads the session's allowlist and logs into its
# host-only folder (linked from the slot's id).
count_allowed() { agent-logs --net --json "$id" | jq -s '[.[] | select(.source=="egress" and .target=="pkg.agent-vm.test:443")] | length'; }
n0=$(count_allowed)
agent-exec "$id" -- curl -sS -m 20 -p -o /dev/null https://pkg.agent-vm.test/ >/dev/null 2>&1 || true
deadline=$((SECONDS + 30))
until [ "$(count_allowed)" -gt "$n0" ]; do
  [ $SECONDS -lt $deadline ] || fail "no new egress entry in the session's log after resume"
  sleep 0.1
done
v=$(agent-logs --net --json "$id" | jq -r 'select(.source=="egress" and .target=="pkg.agent-vm.test:443") | "\(.verdict): \(.reason)"' | tail -1)
[[ "$v" != "denied: not on the allowlist"* ]] || fail "the allowed host was refused after resume: $v"
log "ok: the resumed session's allowlist and egress log are its own ($v)"
stop_out=$(agent-stop "$id" --json)
expect_eq "agent-stop stops the resumed session" true "$(jq -r 'if type=="array" then .[0].was_running else .was_running end' <<<"$stop_out")"
if kill -0 "$rpid" 2>/dev/null && [ "$(awk '{print $3}' /proc/$rpid/stat 2>/dev/null)" != Z ]; then
  fail "QEMU $rpid still runs after agent-stop"
fi
expect_eq "status after stop" stopped "$(list_field "$id" .status)"
[ ! -e "$AGENT_VM_SESSIONS/.host/$vmid" ] || fail "the slot's link to the host-only folder outlived its VM"
log "ok: agent-stop stopped QEMU $rpid"

log "pool --size 0"
agent-vm pool --size 0 >/dev/null
expect_eq "no pooled VM listed" 0 "$(agent-vm pool --json | jq '.vms | length')"
for p in $(pooled_pids) $before; do
  [ "$p" = "$pid" ] && continue
  if kill -0 "$p" 2>/dev/null && tr '\0' ' ' </proc/$p/cmdline 2>/dev/null | grep -q qemu; then
    # A pooled QEMU still alive (the sessions' own are allowed).
    [ "$p" = "$pid2" ] || fail "pooled QEMU $p survived pool --size 0"
  fi
done
# Sessions keep the folder of their pooled boot on QEMU's command line; any
# other QEMU naming the pool's folder is a pooled one left behind.
left=$(pgrep -f -- "$AGENT_VM_SESSIONS/.pool/" | grep -vx -e "$pid" -e "$pid2" || true)
expect_eq "no QEMU runs on a pool folder but the sessions'" "" "$left"

agent-stop "$id" "$id2" >/dev/null
agent-rm "$id" "$id2" >/dev/null
expect_eq "no QEMU of this test left" "" "$(pgrep -f -- "$AGENT_VM_SESSIONS" || true)"
