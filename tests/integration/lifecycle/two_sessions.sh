#!/usr/bin/env bash
# Two sessions at once: distinct ports, and each guest sees only its own repo.
source "$AGENT_VM_SOURCE/tests/integration/lib.sh"

make_repo "$TEST_TMP/git/alpha.git"
make_repo "$TEST_TMP/git/beta.git"
echo "only in beta" > "$TEST_TMP/git/beta.git/beta-only.txt"
git -C "$TEST_TMP/git/beta.git" add beta-only.txt
git -C "$TEST_TMP/git/beta.git" -c user.name=t -c user.email=t@t commit -q -m beta
serve_git "$TEST_TMP/git"

log "spawn two at once"
agent-spawn --repo "git://127.0.0.1:$GIT_PORT/alpha.git" --agent-cmd "$STAND_IN" --memory 512M --json >"$TEST_TMP/a.json" &
pa=$!
agent-spawn --repo "git://127.0.0.1:$GIT_PORT/beta.git" --agent-cmd "$STAND_IN" --memory 512M --json >"$TEST_TMP/b.json" &
pb=$!
wait $pa || fail "spawn of alpha failed"
wait $pb || fail "spawn of beta failed"
a=$(jq -r .id "$TEST_TMP/a.json"); b=$(jq -r .id "$TEST_TMP/b.json")
pa_port=$(jq -r .ssh_port "$TEST_TMP/a.json"); pb_port=$(jq -r .ssh_port "$TEST_TMP/b.json")
[ "$a" != "$b" ] || fail "both sessions got id $a"
[ "$pa_port" != "$pb_port" ] || fail "both sessions got port $pa_port"
log "ok: ids $a/$b, ports $pa_port/$pb_port"

expect_eq "alpha running" running "$(list_field "$a" .status)"
expect_eq "beta running" running "$(list_field "$b" .status)"
expect_eq "alpha's repo" "README" "$(agent-exec "$a" -- ls /session/repo | tr '\n' ' ' | sed 's/ $//')"
expect_eq "beta's repo" "README beta-only.txt" "$(agent-exec "$b" -- ls /session/repo | tr '\n' ' ' | sed 's/ $//')"
# One 9p share per guest, and it is that session's own folder.
expect_eq "alpha has one 9p mount" 1 "$(agent-exec "$a" --root -- sh -c "grep -c ' 9p ' /proc/mounts")"
expect_eq "alpha's share is its own folder" "$a" "$(agent-exec "$a" --root -- sh -c 'grep -o "agent-vm session [a-z0-9]*" /session/ssh/authorized_keys | cut -d" " -f3')"
expect_eq "beta's share is its own folder" "$b" "$(agent-exec "$b" --root -- sh -c 'grep -o "agent-vm session [a-z0-9]*" /session/ssh/authorized_keys | cut -d" " -f3')"

agent-stop "$a" "$b" >/dev/null
expect_eq "alpha stopped" stopped "$(list_field "$a" .status)"
expect_eq "beta stopped" stopped "$(list_field "$b" .status)"
