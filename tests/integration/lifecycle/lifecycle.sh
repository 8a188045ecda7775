#!/usr/bin/env bash
# The whole lifecycle of one session, with the real commands, a real guest
# under the host's accelerator, the stand-in agent and a repository served by
# git daemon on 127.0.0.1:
#   spawn -> list (running, from QMP) -> exec (the clone at the right ref)
#   -> attach through a pty (tmux screen, Ctrl+B D detaches, agent lives on)
#   -> stop (guest power-off) -> list (stopped) -> resume (agent continues)
#   -> stop -> rm
source "$AGENT_VM_SOURCE/tests/integration/lib.sh"

make_repo "$TEST_TMP/git/project.git"
serve_git "$TEST_TMP/git"
feature_sha=$(git -C "$TEST_TMP/git/project.git" rev-parse feature)

log "spawn"
out=$(agent-spawn --repo "git://127.0.0.1:$GIT_PORT/project.git" --ref feature \
        --agent-cmd "$STAND_IN" --memory 512M --json)
id=$(json .id "$out")
port=$(json .ssh_port "$out")
expect_eq "spawn reports ready" true "$(json .ready "$out")"
expect_match "ssh port" '^[0-9]+$' "$port"

log "list"
expect_eq "status (QMP query-status)" running "$(list_field "$id" .status)"
expect_eq "qmp_status" running "$(list_field "$id" .qmp_status)"
expect_eq "guest agent" up "$(list_field "$id" .guest)"
expect_eq "agent" running "$(list_field "$id" .agent)"
expect_eq "listed port" "$port" "$(list_field "$id" .ssh_port)"
expect_eq "listed ref" feature "$(list_field "$id" .ref)"
table=$(agent-list)
expect_match "table row" "$id +running +up +running +$port +0 +git://127.0.0.1:$GIT_PORT/project.git@feature" "$table"
# The default asks QEMU alone (which ports the guest holds open); --deep asks the guest agent.
deep=$(agent-vm list --json --deep | jq -c --arg id "$id" '.[] | select(.id==$id) | [.status, .qmp_status, .guest, .agent]')
expect_eq "list --deep" '["running","running","up","running"]' "$deep"
expect_match "the agent wrote its line to its port's host file" . "$(cat "$AGENT_VM_SESSIONS/$id/run/agent-port.log")"
# A unique prefix names the session.
expect_eq "prefix resolves" running "$(agent-vm list --json | jq -r '.[0].status')"

log "exec"
expect_eq "HEAD in the guest" "$feature_sha" "$(agent-exec "${id:0:3}" -- git rev-parse HEAD)"
expect_eq "branch in the guest" feature "$(agent-exec "$id" -- git rev-parse --abbrev-ref HEAD)"
expect_eq "stand-in marker" spawn "$(agent-exec "$id" -- cat .agent-vm-stand-in)"
set +e
agent-exec "$id" -- sh -c 'echo out; echo err >&2; exit 7' >"$TEST_TMP/o" 2>"$TEST_TMP/e"
rc=$?
set -e
expect_eq "exit code passed through" 7 "$rc"
expect_eq "stdout passed through" out "$(cat "$TEST_TMP/o")"
expect_eq "stderr passed through" err "$(cat "$TEST_TMP/e")"

log "attach through a pty"
drv new-session -d -s att -x 100 -y 30 "agent-attach $id; echo attach-exit=\$?; sleep 600"
wait_screen att "agent-vm stand-in agent \(spawn\)" 60
log "ok: attach shows the agent's tmux screen"
drv send-keys -t att C-b d
wait_screen att "attach-exit=0" 30
log "ok: Ctrl+B D detached, attach exited 0"
drv kill-session -t att
expect_eq "agent still running after detach" running "$(list_field "$id" .agent)"

log "stop"
out=$(agent-stop "$id" --json)
expect_eq "stop method" guest-poweroff "$(json '.[0].method' "$out")"
expect_eq "status after stop" stopped "$(list_field "$id" .status)"
expect_eq "no QEMU left" "" "$(pgrep -f -- "-name agent-vm-$id" || true)"
how=$(jq -r '.history[-1].how' "$AGENT_VM_SESSIONS/$id/meta.json")
expect_eq "history records the stop" guest-poweroff "$how"
expect_match "stopping again is a no-op" "is not running; nothing to do" "$(agent-stop "$id")"
expect_eq "stand-in saw the polite stop" "spawn stopped" "$(tr '\n' ' ' <"$AGENT_VM_SESSIONS/$id/repo/.agent-vm-stand-in" | sed 's/ $//')"

log "resume, with the old port taken by another program"
socat TCP-LISTEN:"$port",bind=127.0.0.1,reuseaddr,fork /dev/null &
squatter=$!
_bg_pids+=($squatter)
wait_port "$port" 10
out=$(agent-resume "$id" --json)
expect_eq "resume ready" true "$(json .ready "$out")"
new_port=$(json .ssh_port "$out")
[ "$new_port" != "$port" ] || fail "resume took port $port, which another program holds"
log "ok: resume moved from port $port to $new_port"
kill $squatter
expect_eq "status after resume" running "$(list_field "$id" .status)"
expect_eq "agent continued" "spawn stopped resume" "$(agent-exec "$id" -- cat .agent-vm-stand-in | tr '\n' ' ' | sed 's/ $//')"

log "the agent ends: its port closes"
agent-exec --root "$id" -- pkill -TERM -f /usr/libexec/agent-vm/stand-in-agent
deadline=$((SECONDS + 60))
until [ "$(list_field "$id" .agent)" = exited ]; do
  [ $SECONDS -lt $deadline ] || fail "list never showed the agent exited (shows: $(list_field "$id" .agent))"
  sleep 0.5
done
log "ok: agent-list shows the agent exited"
expect_match "with why" "closed its port" "$(list_field "$id" .detail)"
expect_eq "the guest agent still holds its port" up "$(list_field "$id" .guest)"
expect_eq "the guest agent agrees" exited "$(agent-vm list --json --deep | jq -r --arg id "$id" '.[] | select(.id==$id) | .agent')"

log "stop and rm"
expect_eq "second stop" guest-poweroff "$(agent-stop "$id" --json | jq -r '.[0].method')"
expect_eq "two runs recorded" 2 "$(jq '.history | length' "$AGENT_VM_SESSIONS/$id/meta.json")"
agent-rm "$id" >/dev/null
[ ! -e "$AGENT_VM_SESSIONS/$id" ] || fail "session folder still there after rm"
expect_eq "list after rm" "[]" "$(agent-vm list --json | jq -c .)"
