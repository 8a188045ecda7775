#!/usr/bin/env bash
# Bad input to every command: each is refused with a message that says what
# is wrong and how to fix it, and nothing is left half-made (no session
# folder, no lock file, no QEMU). No VM boots here: every refusal must come
# before one would.
source "$AGENT_VM_SOURCE/tests/integration/reliability/rlib.sh"

setup_repo
export -n ANTHROPIC_API_KEY 2>/dev/null || true
unset ANTHROPIC_API_KEY

# Two stopped sessions whose ids share a prefix, written as spawn writes them,
# and a folder beside the sessions folder that no id may reach.
fake_session() {
  local id=$1 d="$AGENT_VM_SESSIONS/$1"
  mkdir -p -m 0700 "$d/repo" "$d/ssh" "$d/run" "$d/opencode"
  cat >"$d/meta.json" <<EOF
{"schema":1,"id":"$id","repo":"$REPO_URL","ref":"","checked_out":"main","commit":"0000000000000000000000000000000000000000",
 "created":"2024-01-01T00:00:00Z","image":"default","accelerator":"tcg","cpus":1,"memory_mib":256,"ssh_port":0,
 "net":"restricted","allow_hosts":[],"status":{"intent":"stopped","reason":""},"history":[]}
EOF
  chmod 0600 "$d/meta.json"
}
mkdir -p -m 0700 "$AGENT_VM_SESSIONS" "$AGENT_VM_SESSIONS/.locks"
fake_session ab1234
fake_session ab5678
expect_eq "fake sessions list as stopped" "stopped stopped" "$(agent-vm list --json | jq -r '[.[].status] | join(" ")')"
mkdir -p "$AGENT_VM_HOME/canary/inner"
echo keep >"$AGENT_VM_HOME/canary/inner/file"

# Everything in the sessions folder and every QEMU that serves it, as a
# fingerprint: a refused command must leave it unchanged.
state() {
  find "$AGENT_VM_SESSIONS" "$AGENT_VM_HOME/canary" \( -type f -printf '%p %m %s\n' \) -o -printf '%p %m\n' | sort
  pgrep -af -- "$AGENT_VM_SESSIONS" || true
}
state >"$TEST_TMP/state.before"
unchanged() {
  state >"$TEST_TMP/state.now"
  diff "$TEST_TMP/state.before" "$TEST_TMP/state.now" >&2 || fail "something was made or removed ($1)"
  log "ok: nothing made or removed ($1)"
}

log "session ids"
for cmd in stop resume rm logs attach; do
  expect_refused "$cmd of an unknown id" "no session 'zz9999'.*hint: run agent-list" agent-vm "$cmd" zz9999
done
expect_refused "exec of an unknown id" "no session 'zz9999'" agent-exec zz9999 -- true
for cmd in stop resume rm logs; do
  expect_refused "$cmd of an ambiguous prefix" "'ab' matches 2 sessions: ab1234, ab5678.*hint: type more" agent-vm "$cmd" ab
done
expect_refused "rm --force of an ambiguous prefix" "matches 2 sessions" agent-rm --force ab
expect_refused "exec of an ambiguous prefix" "matches 2 sessions" agent-exec ab -- true
for bad in ../canary .. . /etc ab1234/../ab5678 ab1234/ .locks 'ab*' '' '../../..' 'ab1234 ab5678' $'ab\n12'; do
  for cmd in stop resume "rm --force" logs attach; do
    # shellcheck disable=SC2086
    expect_refused "$cmd '$bad'" "session id|no session id|relative path|path separator|character" agent-vm $cmd "$bad"
  done
  expect_refused "exec '$bad'" "session id|no session id|relative path|path separator|character" agent-exec "$bad" -- true
done
unchanged "ids"
[ -f "$AGENT_VM_HOME/canary/inner/file" ] || fail "the canary beside the sessions folder was removed"
expect_refused "exec of a stopped session" "is not running.*hint: start it with 'agent-resume ab1234'" agent-exec ab1234 -- true
set +e; agent-exec ab1234 -- true 2>/dev/null; rc=$?; set -e
expect_eq "agent-exec's own failure is 125" 125 "$rc"
expect_refused "attach to a stopped session" "is not running" agent-attach ab1234
expect_refused "exec without a command" "command is required|no command" agent-exec ab1234

log "spawn: repository and ref"
S=(--agent-cmd "$STAND_IN" --memory 256M)
closed=$(free_port)
expect_refused "empty URL" "it is empty" agent-spawn --repo '' "${S[@]}"
expect_refused "unsupported scheme" "scheme 'ftp' is not supported.*hint: use https://" agent-spawn --repo ftp://host/x.git "${S[@]}"
expect_refused "URL without host" "has no host" agent-spawn --repo https:// "${S[@]}"
expect_refused "unreachable repository" "127\.0\.0\.1.*$closed" agent-spawn --repo "git://127.0.0.1:$closed/x.git" "${S[@]}"
expect_refused "no such repository on the server" "project-missing|not found|not exported|no repository|does not appear" \
  agent-spawn --repo "git://127.0.0.1:$GIT_PORT/project-missing.git" "${S[@]}"
expect_refused "missing local path" "no git repository at $TEST_TMP/nowhere" agent-spawn --repo "$TEST_TMP/nowhere" "${S[@]}"
mkdir -p "$TEST_TMP/not-a-repo"
expect_refused "a folder that is no repository" "no git repository" agent-spawn --repo "$TEST_TMP/not-a-repo" "${S[@]}"
expect_refused "unknown ref" "no branch, tag or commit 'no-such-branch'.*branches there: .*feature" \
  agent-spawn --repo "$REPO_URL" --ref no-such-branch "${S[@]}"
expect_refused "malformed ref" "\.\.bad" agent-spawn --repo "$REPO_URL" --ref ..bad "${S[@]}"
unchanged "repository and ref"

log "spawn: port"
for p in 0 65536 70000 -1 abc 22x ''; do
  expect_refused "--port '$p'" "invalid port|--port" agent-spawn --repo "$REPO_URL" --port "$p" "${S[@]}"
done
busy=$(free_port)
python3 -c 'import socket,sys,time
s=socket.socket(); s.bind(("127.0.0.1",int(sys.argv[1]))); s.listen(); time.sleep(600)' "$busy" &
_bg_pids+=($!)
wait_port "$busy" 20
expect_refused "--port in use" "port $busy is in use \(by pid [0-9]+, python3\).*hint: pass another --port" \
  agent-spawn --repo "$REPO_URL" --port "$busy" "${S[@]}"
unchanged "port"

log "spawn: images"
expect_refused "missing image" "no guest image 'nosuch'.*hint: .*agent-vm image" agent-spawn --repo "$REPO_URL" --image nosuch "${S[@]}"
expect_refused "image name that is a path out" "manifest|image" agent-spawn --repo "$REPO_URL" --image ../../../etc "${S[@]}"
img="$TEST_TMP/images"
mkdir -p "$img/notjson" "$img/nokernel" "$img/newschema" "$img/empty" "$img/nofields"
echo '{"schema":1,"name":"notjson",' >"$img/notjson/manifest.json"
jq -c '.kernel = "no-such-vmlinuz"' "$AGENT_VM_IMAGES/default/manifest.json" >"$img/nokernel/manifest.json"
for f in initrd.img rootfs.squashfs; do ln -s "$AGENT_VM_IMAGES/default/$f" "$img/nokernel/$f"; done
jq -c '.schema = 99' "$AGENT_VM_IMAGES/default/manifest.json" >"$img/newschema/manifest.json"
echo '{"schema":1}' >"$img/nofields/manifest.json"
expect_refused "manifest that is not JSON" "manifest" agent-spawn --repo "$REPO_URL" --image "$img/notjson" "${S[@]}"
expect_refused "manifest naming a missing kernel" "no-such-vmlinuz" agent-spawn --repo "$REPO_URL" --image "$img/nokernel" "${S[@]}"
expect_refused "manifest of an unknown schema" "schema|99" agent-spawn --repo "$REPO_URL" --image "$img/newschema" "${S[@]}"
expect_refused "manifest without fields" "manifest" agent-spawn --repo "$REPO_URL" --image "$img/nofields" "${S[@]}"
expect_refused "image folder without manifest" "no manifest.json|manifest" agent-spawn --repo "$REPO_URL" --image "$img/empty" "${S[@]}"
unchanged "images"

log "spawn: other options"
expect_refused "missing API key" "ANTHROPIC_API_KEY is not set.*hint: export ANTHROPIC_API_KEY" \
  env -u ANTHROPIC_API_KEY agent-spawn --repo "$REPO_URL"
expect_refused "--cpus 0" "--cpus must be between 1 and 64" agent-spawn --repo "$REPO_URL" --cpus 0 "${S[@]}"
expect_refused "--cpus 1000" "--cpus must be between 1 and 64" agent-spawn --repo "$REPO_URL" --cpus 1000 "${S[@]}"
expect_refused "--memory lots" "size 'lots' is not a number" agent-spawn --repo "$REPO_URL" --memory lots
expect_refused "--memory 1" "too small.*hint: give at least 64M" agent-spawn --repo "$REPO_URL" --agent-cmd "$STAND_IN" --memory 1
expect_refused "--memory 0" "out of range|too small" agent-spawn --repo "$REPO_URL" --agent-cmd "$STAND_IN" --memory 0
expect_refused "--net bogus" "bogus not in" agent-spawn --repo "$REPO_URL" --net bogus "${S[@]}"
expect_refused "--allow-host with --net full" "only applies to --net restricted" agent-spawn --repo "$REPO_URL" --net full --allow-host x.org "${S[@]}"
expect_refused "--allow-host with a path" "invalid --allow-host" agent-spawn --repo "$REPO_URL" --allow-host 'x.org/path' "${S[@]}"
expect_refused "--allow-host with a bad port" "invalid --allow-host" agent-spawn --repo "$REPO_URL" --allow-host 'x.org:99999' "${S[@]}"
expect_refused "--env NAME=VALUE" "takes a variable name, not NAME=VALUE" agent-spawn --repo "$REPO_URL" --env SECRET=x "${S[@]}"
expect_refused "--env of an unset variable" "not set: AVM_TEST_UNSET" agent-spawn --repo "$REPO_URL" --env AVM_TEST_UNSET "${S[@]}"
expect_refused "--env of a bad name" "not an environment variable name" agent-spawn --repo "$REPO_URL" --env 1BAD "${S[@]}"
expect_refused "--accel bogus" "unknown accelerator 'bogus'" agent-spawn --repo "$REPO_URL" --accel bogus "${S[@]}"
if [ ! -w /dev/kvm ]; then
  # KVM asked for where there is none: refused after the clone, so this is
  # where a half-made session would show.
  expect_refused "--accel kvm without KVM" "KVM was requested but.*hint: use --accel tcg" \
    agent-spawn --repo "$REPO_URL" --accel kvm "${S[@]}"
fi
expect_refused "--timeout abc" "timeout" agent-spawn --repo "$REPO_URL" --timeout abc "${S[@]}"
expect_refused "stop --timeout -5" "timeout" agent-stop ab1234 --timeout -5
expect_refused "list --timeout x" "timeout" agent-list --timeout x
unchanged "other options"

log "unwritable sessions folder"
# A read-only filesystem under the sessions folder, in a mount namespace of
# its own (root may write anywhere else).
ro="$TEST_TMP/ro-sessions"
mkdir -p "$ro"
BAD_INPUTS=$((BAD_INPUTS + 1))
set +e
err=$(unshare -m bash -c 'mount -t tmpfs -o ro,size=64k avm-ro "$1" && shift && "$@"' _ "$ro" \
        env AGENT_VM_SESSIONS="$ro/sessions" agent-spawn --repo "$REPO_URL" "${S[@]}" 2>&1 >/dev/null)
rc=$?
set -e
[ $rc -ne 0 ] || fail "spawn into a read-only sessions folder succeeded"
expect_match "read-only sessions folder named" "$ro/sessions.*Read-only file system.*hint: .*AGENT_VM_SESSIONS" "$err"
[[ "$err" != *"internal error"* ]] || fail "internal error: $err"
if id nobody >/dev/null 2>&1; then
  # And as a user who may not write there (the sessions folder is root's).
  mkdir -p -m 0755 "$TEST_TMP/rootonly/sessions"
  readable_image "$TEST_TMP/rootonly/images"
  chmod 0711 "$TEST_TMP"
  BAD_INPUTS=$((BAD_INPUTS + 1))
  set +e
  err=$(setpriv --reuid=nobody --regid=nogroup --clear-groups \
          env HOME=/nonexistent AGENT_VM_HOME="$TEST_TMP/rootonly" AGENT_VM_SESSIONS="$TEST_TMP/rootonly/sessions" \
          AGENT_VM_IMAGES="$TEST_TMP/rootonly/images" \
          agent-spawn --repo "$REPO_URL" "${S[@]}" 2>&1 >/dev/null)
  rc=$?
  set -e
  chmod 0700 "$TEST_TMP"
  [ $rc -ne 0 ] || fail "spawn into an unwritable sessions folder succeeded"
  expect_match "unwritable sessions folder named" "$TEST_TMP/rootonly/sessions.*(Permission denied|Operation not permitted).*hint: .*AGENT_VM_SESSIONS" "$err"
  [[ "$err" != *"internal error"* ]] || fail "internal error: $err"
  log "ok: unwritable sessions folder refused: $(head -n1 <<<"$err")"
fi
unchanged "unwritable sessions folder"
expect_eq "no lock files left" "" "$(ls "$AGENT_VM_SESSIONS/.locks")"
