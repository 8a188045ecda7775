#!/usr/bin/env bash
# kill -9 of a session's QEMU shows as crashed at once; spawn with an
# unreachable repository or an unknown ref fails clearly and leaves nothing.
source "$AGENT_VM_SOURCE/tests/integration/lib.sh"

make_repo "$TEST_TMP/git/project.git"
serve_git "$TEST_TMP/git"

log "unreachable repository"
closed=$(free_port)
set +e
err=$(agent-spawn --repo "git://127.0.0.1:$closed/nothing.git" --agent-cmd "$STAND_IN" 2>&1 >/dev/null)
rc=$?
set -e
[ $rc -ne 0 ] || fail "spawn of an unreachable repo succeeded"
expect_match "unreachable message names host and port" "127\.0\.0\.1.*$closed" "$err"
expect_eq "no session left" "[]" "$(agent-vm list --json | jq -c .)"

log "unknown ref"
set +e
err=$(agent-spawn --repo "git://127.0.0.1:$GIT_PORT/project.git" --ref no-such-branch --agent-cmd "$STAND_IN" 2>&1 >/dev/null)
rc=$?
set -e
[ $rc -ne 0 ] || fail "spawn with an unknown ref succeeded"
expect_match "unknown ref is named" "no-such-branch" "$err"
expect_match "existing branches are listed" "feature" "$err"
expect_eq "no session left" "[]" "$(agent-vm list --json | jq -c .)"
leftovers=$(find "$AGENT_VM_SESSIONS" -mindepth 1 -maxdepth 1 ! -name .locks | wc -l)
expect_eq "nothing half-made in the sessions folder" 0 "$leftovers"

log "kill -9"
id=$(agent-spawn --repo "git://127.0.0.1:$GIT_PORT/project.git" --agent-cmd "$STAND_IN" --memory 512M -q)
pid=$(jq -r .qemu.pid "$AGENT_VM_SESSIONS/$id/meta.json")
kill -9 "$pid"
expect_eq "status right after kill -9" crashed "$(list_field "$id" .status)"
expect_match "stop of a crashed session" "is not running" "$(agent-stop "$id")"
expect_eq "crash recorded" crash "$(jq -r '.history[-1].how' "$AGENT_VM_SESSIONS/$id/meta.json")"
agent-resume "$id" -q >/dev/null
expect_eq "resumed after the crash" running "$(list_field "$id" .status)"
agent-stop "$id" >/dev/null
