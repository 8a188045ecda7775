#!/usr/bin/env bash
# A meta.json write that fails part way (the sessions folder on a small
# tmpfs that fills up): the command fails saying so, the previous meta.json
# is intact byte for byte, no temporary file is left, and nothing is started
# on a state it could not record. Once there is room again, all works.
# (The unit tests in tests/unit/sessions cover the same for a write cut by
# a file size limit and for a save killed part way.)
if [ -z "${AVM_IN_MOUNT_NS:-}" ]; then
  # A mount namespace of our own: the tmpfs disappears with the test.
  exec unshare -m --propagation private env AVM_IN_MOUNT_NS=1 bash "$0" "$@"
fi
source "$AGENT_VM_SOURCE/tests/integration/reliability/rlib.sh"

setup_repo
mkdir -p "$AGENT_VM_SESSIONS"
mount -t tmpfs -o size=8m,mode=0700 avm-full "$AGENT_VM_SESSIONS"
# The sessions go first (their QEMUs hold the mount), then the mount, so
# that lib.sh can remove the test's temp folder.
_full_disk_exit() {
  local rc=$?
  set +e
  for d in "$AGENT_VM_SESSIONS"/*/; do
    [ -d "$d" ] && agent-vm rm --force "$(basename "$d")" >/dev/null 2>&1
  done
  umount -l "$AGENT_VM_SESSIONS"
  (exit $rc)
  _r_exit
}
trap _full_disk_exit EXIT
id=$(agent-spawn --repo "$REPO_URL" --agent-cmd "$STAND_IN" --memory 256M --no-wait -q --net none)
m=$(meta_of "$id")
pid=$(qemu_pid_of "$id")
kill -9 "$pid"
wait_gone "$pid" 10
expect_eq "crashed" crashed "$(list_field "$id" .status)"
cp "$m" "$TEST_TMP/meta.before"

fill() { dd if=/dev/zero of="$AGENT_VM_SESSIONS/.filler" bs=4k 2>/dev/null || true; }
fill
fault "sessions filesystem full"
free=$(df --output=avail -B1 "$AGENT_VM_SESSIONS" | tail -n1 | tr -d ' ')
expect_eq "no room left" 0 "$free"

log "stop must record the crash, and cannot"
set +e
err=$(agent-stop "$id" 2>&1 >/dev/null)
rc=$?
set -e
expect_eq "stop fails" 1 "$rc"
expect_match "and says why" "No space left on device" "$err"
cmp -s "$m" "$TEST_TMP/meta.before" || fail "meta.json changed after a failed write"
log "ok: meta.json intact"
expect_eq "no temporary file left" "" "$(find "$AGENT_VM_SESSIONS/$id" -maxdepth 1 -name '.meta.json.tmp-*')"

log "resume cannot record its start, so it starts nothing"
set +e
err=$(agent-resume "$id" --no-wait 2>&1 >/dev/null)
rc=$?
set -e
expect_eq "resume fails" 1 "$rc"
expect_match "and says why" "No space left on device" "$err"
expect_no_qemu "$id"
cmp -s "$m" "$TEST_TMP/meta.before" || fail "meta.json changed after a failed resume"
expect_eq "no temporary file left" "" "$(find "$AGENT_VM_SESSIONS/$id" -maxdepth 1 -name '.meta.json.tmp-*')"
expect_eq "still listed, truthfully" crashed "$(list_field "$id" .status)"

log "a new spawn on the full disk leaves nothing behind"
set +e
agent-spawn --repo "$REPO_URL" --agent-cmd "$STAND_IN" --memory 256M --no-wait -q --net none >/dev/null 2>"$TEST_TMP/spawn.err"
rc=$?
set -e
[ $rc -ne 0 ] || fail "spawn on a full disk succeeded"
log "ok: spawn refused: $(tail -n1 "$TEST_TMP/spawn.err")"
expect_eq "only the old session is there" "$id" "$(ls "$AGENT_VM_SESSIONS")"
expect_eq "and only its lock" "$id.lock" "$(ls "$AGENT_VM_SESSIONS/.locks")"

log "room again"
rm "$AGENT_VM_SESSIONS/.filler"
expect_match "stop records the crash now" "nothing to do" "$(agent-stop "$id")"
expect_eq "crash recorded" crash "$(jq -r '.history[-1].how' "$m")"
agent-resume "$id" --no-wait -q >/dev/null
expect_eq "running" running "$(list_field "$id" .status)"
agent-rm --force "$id" >/dev/null
expect_no_qemu "$id"
