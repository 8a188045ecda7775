#!/usr/bin/env bash
# What users pass and read, on one session and two boots:
#   doctor --json; --env of an unset name refused before anything exists;
#   spawn --port, --cpus, --memory, --env NAME, and a prompt with quotes,
#     newlines and a leading '-' (prompt.txt byte for byte, the agent's
#     command line as agent-run builds it, the variable in the agent's
#     process environment);
#   agent-logs: the console, -f from a live boot to the VM's stop, -n N;
#   resume --port, --cpus, --memory take effect; --previous is the boot before;
#   agent-rm refuses a running session, --force removes it and its QEMU.
source "$AGENT_VM_SOURCE/tests/integration/lifecycle/users_lib.sh"

# A repository whose `as-opencode` runs the guest's own agent-run as it runs
# opencode, with a fake opencode first on PATH that records its arguments
# (NUL-separated) and its pid, then waits like an agent.
repo="$TEST_TMP/git/project.git"
make_repo "$repo"
cat >"$repo/as-opencode" <<'SCRIPT'
#!/bin/bash
set -eu
A=/run/agent-vm/agent
mkdir -p "$A/bin"
cat >"$A/bin/opencode" <<'FAKE'
#!/bin/bash
echo $$ >/session/repo/.opencode-pid
printf '%s\0' "$@" >/session/repo/.opencode-argv.tmp
mv /session/repo/.opencode-argv.tmp /session/repo/.opencode-argv
trap 'exit 0' TERM HUP INT
while :; do sleep 3600 & wait $! || true; done
FAKE
chmod +x "$A/bin/opencode"
# agent-run without the agent command and as on a first boot: opencode --prompt.
mv "$A/agent-cmd" "$A/agent-cmd.used"
rm -f /session/opencode/.agent-vm/started
PATH="$A/bin:$PATH" exec /usr/libexec/agent-vm/agent-run
SCRIPT
chmod +x "$repo/as-opencode"
git -C "$repo" add as-opencode
git -C "$repo" -c user.name=t -c user.email=t@t commit -q -m "as-opencode"
serve_git "$TEST_TMP/git"
URL="git://127.0.0.1:$GIT_PORT/project.git"

# guest_memtotal <id>: MemTotal of the guest, in kB.
guest_memtotal() { agent-exec "$1" -- awk '/^MemTotal:/ {print $2}' /proc/meminfo; }

log "doctor --json"
doc=$(agent-vm doctor --json) || fail "doctor exited $? on a host that runs sessions"
jq -e 'type == "object" and (.ok | type == "boolean") and (.version | type == "string")
       and (.checks | type == "array" and length > 0)
       and all(.checks[]; (.area | type == "string") and (.ok | type == "boolean")
                          and (.verdict | type == "string") and (.fix | type == "string"))' \
  <<<"$doc" >/dev/null || fail "doctor --json has missing or mistyped fields: $doc"
expect_eq "doctor ok" true "$(json .ok "$doc")"
expect_eq "doctor areas" "qemu image /dev/kvm accelerator tsc ports sessions" \
  "$(jq -r '[.checks[].area] | join(" ")' <<<"$doc")"
expect_eq "every check ok" true "$(jq '[.checks[].ok] | all' <<<"$doc")"

log "--env naming an unset variable"
unset AVM_TEST_NOT_SET
set +e
err=$(agent-spawn --repo "$URL" --agent-cmd "$STAND_IN" --env AVM_TEST_NOT_SET 2>&1 >/dev/null)
rc=$?
set -e
expect_eq "spawn with an unset --env exits" 1 "$rc"
expect_match "the name is named" "AVM_TEST_NOT_SET" "$err"
expect_match "a fix is named" "hint: .*export" "$err"
expect_eq "nothing created" "" "$(sessions_left)"

log "spawn with --port, --cpus, --memory, --env and an awkward prompt"
# Quotes of both kinds, shell syntax, a backslash, a tab, inner and trailing
# newlines, and a leading '-' (which must not be taken for an option), passed
# as users type it: --prompt TEXT.
printf -- '-n "double" '\''single'\'' $HOME `id` \\ back\tslash\nsecond line\n\n  indented last line\n' \
  >"$TEST_TMP/prompt"
prompt=$(cat "$TEST_TMP/prompt"; echo .)
prompt=${prompt%.}
export AVM_TEST_VALUE='spaces and "quotes" and $dollar = equals'
port1=$(free_port)
out=$(agent-spawn --repo "$URL" --agent-cmd "bash ./as-opencode" --prompt "$prompt" \
        --env AVM_TEST_VALUE --port "$port1" --cpus 1 --memory 512M --no-wait --json)
id=$(json .id "$out")
expect_eq "spawn's port" "$port1" "$(json .ssh_port "$out")"
# Follow the console from a live boot: from here to the VM's stop.
agent-logs -f "$id" >"$TEST_TMP/follow.out" 2>"$TEST_TMP/follow.err" &
follow_pid=$!
_bg_pids+=($follow_pid)
repo_dir="$AGENT_VM_SESSIONS/$id/repo"
wait_file "$repo_dir/.opencode-argv" 300
log "ok: the agent started"

expect_eq "prompt.txt on the host, byte for byte" "$(sha256sum <"$TEST_TMP/prompt")" \
  "$(sha256sum <"$AGENT_VM_SESSIONS/$id/prompt.txt")"
agent-exec "$id" --root -- cat /run/agent-vm/agent/prompt.txt >"$TEST_TMP/guest-prompt"
expect_eq "the guest's prompt.txt, byte for byte" "$(sha256sum <"$TEST_TMP/prompt")" \
  "$(sha256sum <"$TEST_TMP/guest-prompt")"
# agent-run passes "$(<prompt.txt)": the prompt less its trailing newlines.
{ printf -- '--prompt\0'; printf '%s\0' "${prompt%$'\n'}"; } >"$TEST_TMP/argv.want"
cmp -s "$TEST_TMP/argv.want" "$repo_dir/.opencode-argv" ||
  fail "opencode's arguments differ: $(od -c "$repo_dir/.opencode-argv" | head -n 8)"
log "ok: opencode got --prompt and the prompt as one argument"

agent_pid=$(cat "$repo_dir/.opencode-pid")
got=$(agent-exec "$id" --root -- cat "/proc/$agent_pid/environ" | tr '\0' '\n' | grep '^AVM_TEST_VALUE=' || true)
expect_eq "--env reached the agent's process" "AVM_TEST_VALUE=$AVM_TEST_VALUE" "$got"

expect_eq "nproc with --cpus 1" 1 "$(agent-exec "$id" -- nproc)"
mem1=$(guest_memtotal "$id")
[ "$mem1" -le 524288 ] || fail "MemTotal $mem1 kB with --memory 512M"
log "ok: MemTotal $mem1 kB with --memory 512M"
expect_eq "ssh answers on spawn's --port" "SSH-2.0-" "$(ssh_banner "$port1")"
expect_eq "listed port" "$port1" "$(list_field "$id" .ssh_port)"

log "agent-logs"
logs=$(agent-logs "$id")
expect_match "the console has the kernel's lines" "$KERNEL_LINE" "$logs"
expect_match "and the guest's setup" "agent-vm-setup: ready" "$logs"

log "stop: agent-logs -f ends by itself"
expect_eq "stop" guest-poweroff "$(agent-stop "$id" --json | jq -r '.[0].method')"
deadline=$((SECONDS + 60))
while kill -0 "$follow_pid" 2>/dev/null; do
  [ $SECONDS -lt $deadline ] || fail "agent-logs -f still running 60s after the VM stopped"
  sleep 0.1
done
wait "$follow_pid" || fail "agent-logs -f exited $?: $(cat "$TEST_TMP/follow.err")"
agent-logs "$id" >"$TEST_TMP/boot1.log"
cmp -s "$TEST_TMP/boot1.log" "$TEST_TMP/follow.out" ||
  fail "agent-logs -f printed something else than the whole console ($(wc -c <"$TEST_TMP/follow.out") of $(wc -c <"$TEST_TMP/boot1.log") bytes)"
log "ok: -f printed the whole boot, $(wc -l <"$TEST_TMP/follow.out") lines, and ended with the VM"
expect_match "the console ends with the power-off" "reboot: Power down" "$(tail -n 3 "$TEST_TMP/boot1.log")"
expect_eq "-n 5" "$(tail -n 5 "$TEST_TMP/boot1.log")" "$(agent-logs -n 5 "$id")"
expect_eq "-n 1 is one line" 1 "$(agent-logs --lines 1 "$id" | wc -l)"
set +e
err=$(agent-logs --previous "$id" 2>&1 >/dev/null)
rc=$?
set -e
expect_eq "--previous before a second boot exits" 1 "$rc"
expect_match "and says there is none" "no console log yet from a previous boot" "$err"

log "resume with --port, --cpus, --memory"
port2=$(free_port)
rm -f "$repo_dir/.opencode-argv"
out=$(agent-resume "$id" --port "$port2" --cpus 2 --memory 768M --json)
expect_eq "resume's port" "$port2" "$(json .ssh_port "$out")"
wait_file "$repo_dir/.opencode-argv" 120
expect_eq "nproc with --cpus 2" 2 "$(agent-exec "$id" -- nproc)"
mem2=$(guest_memtotal "$id")
[ "$mem2" -gt 524288 ] && [ "$mem2" -le 786432 ] || fail "MemTotal $mem2 kB with --memory 768M"
log "ok: MemTotal $mem2 kB with --memory 768M"
expect_eq "ssh answers on resume's --port" "SSH-2.0-" "$(ssh_banner "$port2")"
expect_eq "listed port" "$port2" "$(list_field "$id" .ssh_port)"
expect_eq "meta records the new sizes" "2 768" \
  "$(jq -r '"\(.cpus) \(.memory_mib)"' "$(meta_of "$id")")"
agent-logs --previous "$id" >"$TEST_TMP/previous.log"
cmp -s "$TEST_TMP/boot1.log" "$TEST_TMP/previous.log" || fail "--previous is not the first boot's console"
log "ok: --previous is the first boot's console"
expect_match "the current console is a new boot" "$KERNEL_LINE" "$(agent-logs "$id")"
[ "$(agent-logs "$id" | grep -c 'reboot: Power down')" = 0 ] || fail "the current console shows the old power-off"

log "rm of a running session"
pid=$(jq -r .qemu.pid "$(meta_of "$id")")
set +e
err=$(agent-rm "$id" 2>&1 >/dev/null)
rc=$?
set -e
expect_eq "rm of a running session exits" 1 "$rc"
expect_match "refusal names --force" "is running.*--force" "$(tr '\n' ' ' <<<"$err")"
kill -0 "$pid" || fail "QEMU $pid is gone after a refused rm"
expect_eq "still running" running "$(list_field "$id" .status)"
[ -d "$AGENT_VM_SESSIONS/$id" ] || fail "the session folder went with a refused rm"
agent-rm --force "$id" >/dev/null
[ ! -e "$AGENT_VM_SESSIONS/$id" ] || fail "session folder still there after rm --force"
wait_gone "$pid" 30
expect_no_qemu "$id"
expect_eq "list after rm --force" "[]" "$(agent-vm list --json | jq -c .)"
