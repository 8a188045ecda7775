#!/usr/bin/env bash
# Spawns that do not finish, as users meet them:
#   a guest that stops early (an image whose kernel command line names an
#     init that does not exist): spawn fails, the session is kept and listed
#     failed with the reason, agent-logs shows the console, resume works;
#   agent-stop --force skips the power button (history says quit);
#   Ctrl+C while cloning leaves nothing (no folder, no lock file);
#   Ctrl+C while booting stops QEMU and leaves the session marked failed.
# Ctrl+C is typed into a terminal (a tmux pane), as a user types it.
source "$AGENT_VM_SOURCE/tests/integration/lifecycle/users_lib.sh"

make_repo "$TEST_TMP/git/project.git"
serve_git "$TEST_TMP/git"
URL="git://127.0.0.1:$GIT_PORT/project.git"

log "a guest that stops early"
# The default image with one change: init= names nothing, so the guest's
# initramfs says so and powers off.
img="$TEST_TMP/stops-early"
mkdir "$img"
for f in "$AGENT_VM_IMAGES/default"/*; do ln -s "$f" "$img/"; done
rm "$img/manifest.json"
jq '.cmdline += " init=/no-such-init"' "$AGENT_VM_IMAGES/default/manifest.json" >"$img/manifest.json"
set +e
err=$(agent-spawn --repo "$URL" --image "$img" --agent-cmd "$STAND_IN" --memory 512M --timeout 240 2>&1 >/dev/null)
rc=$?
set -e
expect_eq "spawn of a guest that stops early exits" 1 "$rc"
expect_match "spawn says QEMU exited" "QEMU exited" "$err"
expect_match "spawn shows the console's last lines" "no /no-such-init in the root image" "$err"
expect_match "and names the next steps" "hint: .*agent-resume" "$err"
id=$(only_session) || fail "no single session kept after the failed boot: $(sessions_left)"
expect_eq "listed failed" failed "$(list_field "$id" .status)"
expect_match "with the reason" "QEMU exited" "$(list_field "$id" .detail)"
expect_match "the table says failed" "$id +failed" "$(agent-list)"
expect_eq "history records the failed boot" boot-failed "$(jq -r '.history[-1].how' "$(meta_of "$id")")"
[ -f "$AGENT_VM_SESSIONS/$id/repo/README" ] || fail "the clone was not kept"
expect_no_qemu "$id"
logs=$(agent-logs "$id")
expect_match "logs show the kernel" "$KERNEL_LINE" "$logs"
expect_match "logs show why the guest stopped" "agent-vm initramfs: no /no-such-init in the root image" "$logs"

log "resume after the failed boot"
out=$(agent-resume "$id" --image default --json)
expect_eq "resume ready" true "$(json .ready "$out")"
expect_eq "listed running" running "$(list_field "$id" .status)"
expect_eq "the agent runs" running "$(list_field "$id" .agent)"
expect_eq "the stand-in started" spawn "$(agent-exec "$id" -- cat .agent-vm-stand-in)"

log "agent-stop --force"
pid=$(jq -r .qemu.pid "$(meta_of "$id")")
out=$(agent-stop --force "$id" --json)
expect_eq "stop --force quits" quit "$(json '.[0].method' "$out")"
expect_eq "history says quit" quit "$(jq -r '.history[-1].how' "$(meta_of "$id")")"
wait_gone "$pid" 30
expect_no_qemu "$id"
expect_eq "listed stopped" stopped "$(list_field "$id" .status)"
expect_eq "with how" "last stop: quit" "$(list_field "$id" .detail)"
expect_eq "the agent was not asked to stop" spawn "$(cat "$AGENT_VM_SESSIONS/$id/repo/.agent-vm-stand-in")"
agent-rm "$id" >/dev/null
expect_eq "nothing left after rm" "" "$(sessions_left)"

# Runs agent-spawn in a terminal and says how it ended. bash waits to see
# whether its child took Ctrl+C as an order to die: only if it did, bash dies
# too (and the line never shows).
cat >"$TEST_TMP/run-spawn" <<'EOF2'
agent-spawn "$@"
echo spawn-exit=$?
exec sleep 600
EOF2

log "Ctrl+C while cloning"
# A server that accepts and never answers: the clone waits on it.
python3 -c '
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(8)
print(s.getsockname()[1], flush=True)
held = []
while True:
    c, _ = s.accept()
    held.append(c)
    with open(sys.argv[1], "a") as f:
        f.write("accepted\n")
' "$TEST_TMP/silent.accepted" >"$TEST_TMP/silent.port" &
_bg_pids+=($!)
wait_file "$TEST_TMP/silent.port" 20
silent="git://127.0.0.1:$(cat "$TEST_TMP/silent.port")/project.git"
drv new-session -d -s clone -x 200 -y 50 \
  "exec bash $TEST_TMP/run-spawn --repo $silent --agent-cmd $STAND_IN --memory 512M"
wait_file "$TEST_TMP/silent.accepted" 60
expect_match "a session is being made" '^\.creating-' "$(sessions_left | head -n 1)"
drv send-keys -t clone C-c
wait_screen clone "spawn-exit=" 60
screen=$(drv capture-pane -p -t clone | tr '\n' ' ')
expect_match "spawn says it was interrupted" "interrupted by SIGINT" "$screen"
expect_match "and exits with an error" "spawn-exit=1" "$screen"
expect_eq "nothing left: no folder, no lock file" "" "$(sessions_left)"
expect_eq "nothing listed" "[]" "$(agent-vm list --json | jq -c .)"
drv kill-session -t clone

log "Ctrl+C while booting"
drv new-session -d -s boot -x 200 -y 50 \
  "exec bash $TEST_TMP/run-spawn --repo $URL --agent-cmd $STAND_IN --memory 512M"
# QEMU runs once spawn has recorded its pid in the committed session.
deadline=$((SECONDS + 120))
until id=$(only_session) && pid=$(jq -r '.qemu.pid // empty' "$(meta_of "$id")" 2>/dev/null) && [ -n "$pid" ]; do
  [ $SECONDS -lt $deadline ] || fail "QEMU did not start within 120s: $(sessions_left)"
  sleep 0.1
done
log "QEMU $pid of $id runs; pressing Ctrl+C"
drv send-keys -t boot C-c
wait_screen boot "spawn-exit=" 120
screen=$(drv capture-pane -p -t boot | tr '\n' ' ')
expect_match "spawn says it was interrupted" "interrupted by SIGINT" "$screen"
expect_match "and exits with an error" "spawn-exit=1" "$screen"
wait_gone "$pid" 30
expect_no_qemu "$id"
expect_eq "the session is listed failed" failed "$(list_field "$id" .status)"
expect_match "with the reason" "interrupted" "$(list_field "$id" .detail)"
flock -n "$AGENT_VM_SESSIONS/.locks/$id.lock" true || fail "the session's lock is still held"
log "ok: the session's lock is free"
agent-rm "$id" >/dev/null
expect_eq "nothing left after rm" "" "$(sessions_left)"
drv kill-session -t boot
