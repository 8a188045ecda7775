#!/usr/bin/env bash
# Security of one session on a real guest, as root (9p mapped-xattr):
#   secrets: the API key is in no process's argv or environment on the host,
#     only in the session's host-only folder (api-key), and nowhere in the
#     guest (the agent holds a placeholder; the host's model gateway adds the
#     real key); in no log; the session's files and sockets have the modes
#     docs/design.md gives;
#   QEMU: seccomp sandbox on, no_new_privs, the invoking user;
#   SSH: bound to 127.0.0.1 only; a wrong key, root and passwords refused;
#     a host key that is not the pinned one refused by agent-attach;
#   9p: symlinks (made in the guest, or cloned from a hostile repository)
#     that point outside /session do not let the guest read host files.
# The same 9p checks for security_model=none run in unprivileged.sh.
source "$AGENT_VM_SOURCE/tests/integration/reliability/rlib.sh"

SECRET="sk-ant-test-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf '%s' "$SECRET" >"$TEST_TMP/secret.pat"   # patterns go through files, never argv
HOST_TOKEN="host-only-$RANDOM$RANDOM$RANDOM"
HOSTFILE="$TEST_TMP/outside/host-secret.txt"
mkdir -p "$TEST_TMP/outside"
echo "$HOST_TOKEN" >"$HOSTFILE"
printf '%s' "$HOST_TOKEN" >"$TEST_TMP/token.pat"

# A hostile repository: symlinks that point at the host file, absolute and
# relative, committed next to a file that holds the token legitimately.
make_repo "$TEST_TMP/git/project.git"
r="$TEST_TMP/git/project.git"
ln -s "$HOSTFILE" "$r/abs-link"
# From sessions/<id>/repo/ up to $TEST_TMP: ../../../..
ln -s ../../../../outside/host-secret.txt "$r/rel-link"
ln -s / "$r/root-link"
echo "$HOST_TOKEN" >"$r/inside.txt"
git -C "$r" add abs-link rel-link root-link inside.txt
git -C "$r" -c user.name=t -c user.email=t@t commit -q -m "hostile links"
serve_git "$TEST_TMP/git"
REPO_URL="git://127.0.0.1:$GIT_PORT/project.git"

log "spawn with an API key (restricted networking, the default)"
out=$(ANTHROPIC_API_KEY="$SECRET" agent-spawn --repo "$REPO_URL" --agent-cmd "$STAND_IN" --memory 512M \
        --prompt "a prompt" --json 2>"$TEST_TMP/spawn.err")
id=$(json .id "$out")
port=$(json .ssh_port "$out")
d="$AGENT_VM_SESSIONS/$id"
pid=$(qemu_pid_of "$id")
expect_eq "agent running" running "$(list_field "$id" .agent)"

log "secrets on the host"
h="$AGENT_VM_SESSIONS/.host/$id"
[ "$(grep -cF -f "$TEST_TMP/secret.pat" "$d/env")" = 0 ] || fail "the env file carries the key into the guest"
leaks=$(for f in /proc/[0-9]*/cmdline /proc/[0-9]*/environ; do
          grep -qF -f "$TEST_TMP/secret.pat" "$f" 2>/dev/null && echo "$f ($(tr '\0' ' ' <"${f%/*}/cmdline" | cut -c1-80))"
        done || true)
expect_eq "host processes holding the key in argv or environ" "" "$leaks"
files=$(grep -rlF -f "$TEST_TMP/secret.pat" "$d" "$AGENT_VM_HOME" --exclude-dir=repo 2>/dev/null | sort -u || true)
expect_eq "files holding the key" "$h/api-key" "$files"
grep -qF -f "$TEST_TMP/secret.pat" "$TEST_TMP/spawn.err" && fail "spawn's output shows the key"
agent-vm logs "$id" | grep -qF -f "$TEST_TMP/secret.pat" && fail "the console log shows the key"
log "ok: the key is only in $h/api-key"

log "secrets in the guest: no process holds the key"
# The key goes in on stdin, never on a command line (QGA's argv is visible).
guest=$(agent-exec "$id" --root -i -- bash -c '
  read -r s
  pane=$(runuser -u agent -- tmux list-panes -t agent -F "#{pane_pid}")
  in_agent() { local p=$1; while [ "$p" -gt 1 ]; do [ "$p" = "$pane" ] && return 0; p=$(awk "/^PPid:/{print \$2}" /proc/$p/status 2>/dev/null || echo 0); done; return 1; }
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    [ "$p" = $$ ] && continue
    { c=$(<$d/cmdline); } 2>/dev/null || continue
    [[ "$c" == *"$s"* ]] && echo "argv:$p:$c"
    { e=$(<$d/environ); } 2>/dev/null || continue
    if [[ "$e" == *"$s"* ]]; then in_agent "$p" && echo "agent:$p" || echo "other:$p:$c"; fi
  done
  j=$(journalctl -b --no-pager 2>/dev/null)
  [[ "$j" == *"$s"* ]] && echo journal:1 || echo journal:0
' <"$TEST_TMP/secret.pat")
expect_eq "no guest process has the key in its argv" "" "$(grep '^argv:' <<<"$guest" || true)"
expect_eq "no guest process outside the agent has the key" "" "$(grep '^other:' <<<"$guest" || true)"
expect_eq "the agent does not have it either" "" "$(grep '^agent:' <<<"$guest" || true)"
expect_eq "the guest's journal does not show it" "journal:0" "$(grep '^journal:' <<<"$guest")"
expect_eq "the agent's copy is private to it" "600 agent" \
  "$(agent-exec "$id" --root -- stat -c '%a %U' /run/agent-vm/agent/env)"

log "modes"
expect_eq "sessions folder" 700 "$(stat -c %a "$AGENT_VM_SESSIONS")"
expect_eq "locks folder" 700 "$(stat -c %a "$AGENT_VM_SESSIONS/.locks")"
expect_eq "session folder" 700 "$(stat -c %a "$d")"
expect_eq "host-only folder" 700 "$(stat -c %a "$h")"
for f in api-key gateway.json; do expect_eq ".host/$f" 600 "$(stat -c %a "$h/$f")"; done
for f in env meta.json prompt.txt ssh/id_ed25519 ssh/ssh_host_ed25519_key; do
  expect_eq "$f" 600 "$(stat -c %a "$d/$f")"
done
for f in run ssh opencode; do expect_eq "$f/" 700 "$(stat -c %a "$d/$f")"; done
for s in "$d"/run/*.sock; do
  m=$(stat -c %a "$s")
  [ $((8#$m & 8#077)) = 0 ] || fail "socket $s is mode $m, open to others"
done
log "ok: sockets $(ls "$d/run" | grep -c sock) private"
expect_eq "port reservations" 700 "$(stat -c %a "$AGENT_VM_HOME/run/ports")"

log "QEMU's confinement"
expect_eq "QEMU runs as the invoking user" "$(id -u) $(id -u) $(id -u) $(id -u)" \
  "$(awk '/^Uid:/{print $2, $3, $4, $5}' "/proc/$pid/status")"
expect_eq "seccomp filter on QEMU" 2 "$(awk '/^Seccomp:/{print $2}' "/proc/$pid/status")"
expect_eq "no_new_privs on QEMU" 1 "$(awk '/^NoNewPrivs:/{print $2}' "/proc/$pid/status")"
expect_match "-sandbox on" "-sandbox on," "$(tr '\0' ' ' <"/proc/$pid/cmdline")"

log "SSH: loopback only, the session's key only"
listen=$(ss -ltnH "sport = :$port" | awk '{print $4}' | sort -u | tr '\n' ' ')
expect_eq "the forward listens on 127.0.0.1 only" "127.0.0.1:$port " "$listen"
for ip in $(hostname -I 2>/dev/null); do
  case "$ip" in 127.*|*:*) continue ;; esac
  if (exec 3<>"/dev/tcp/$ip/$port") 2>/dev/null; then fail "port $port answers on $ip"; fi
  log "ok: nothing on $ip:$port"
done
SSH=(ssh -F /dev/null -p "$port" -o BatchMode=yes -o ConnectTimeout=20 -o IdentitiesOnly=yes
     -o UserKnownHostsFile="$d/ssh/known_hosts" -o StrictHostKeyChecking=yes -o LogLevel=ERROR)
expect_eq "the session's key logs in" ok "$("${SSH[@]}" -i "$d/ssh/id_ed25519" agent@127.0.0.1 echo ok)"
ssh-keygen -q -t ed25519 -N '' -f "$TEST_TMP/other_key"
for what in "wrong key:-i $TEST_TMP/other_key agent@127.0.0.1" \
            "root with the right key:-i $d/ssh/id_ed25519 root@127.0.0.1" \
            "password:-o PreferredAuthentications=password -o PubkeyAuthentication=no agent@127.0.0.1"; do
  name=${what%%:*}
  # shellcheck disable=SC2086
  set +e; err=$("${SSH[@]}" ${what#*:} true 2>&1); rc=$?; set -e
  expect_eq "$name refused (exit)" 255 "$rc"
  # Only public keys are offered: a password is never even asked for.
  expect_match "$name refused" "Permission denied \(publickey\)" "$err"
done

log "agent-attach refuses a host key that is not the pinned one"
expect_eq "attach with the pinned key" ok "$(agent-attach "$id" --command 'echo ok' </dev/null)"
cp "$d/ssh/ssh_host_ed25519_key.pub" "$TEST_TMP/pinned.pub"
cp "$TEST_TMP/other_key.pub" "$d/ssh/ssh_host_ed25519_key.pub"
set +e; err=$(agent-attach "$id" --command 'echo reached' </dev/null 2>&1); rc=$?; set -e
cp "$TEST_TMP/pinned.pub" "$d/ssh/ssh_host_ed25519_key.pub"
[ $rc -ne 0 ] || fail "attach accepted a host key that is not the pinned one"
[[ "$err" != *reached* ]] || fail "attach ran the command despite the mismatch"
expect_match "the mismatch is named" "[Hh]ost key" "$err"
expect_eq "attach again with the pinned key" ok "$(agent-attach "$id" --command 'echo ok' </dev/null)"

log "9p: nothing outside the session folder is readable from the guest"
g() { agent-exec "$id" "$@" 2>/dev/null || true; }
expect_eq "a file inside the share is readable (the check can see)" "$HOST_TOKEN" "$(g -- cat inside.txt)"
for who in agent root; do
  as=(); [ $who = root ] && as=(--root)
  out=$(g "${as[@]}" -- sh -c "
    cd /session/repo
    ln -sf '$HOSTFILE' guest-abs-$who
    ln -sf '../../../../../../../../../../..$HOSTFILE' guest-rel-$who
    for l in abs-link rel-link root-link$HOSTFILE guest-abs-$who guest-rel-$who; do cat \$l 2>/dev/null; done
    cat /session/../..$HOSTFILE '/session/repo/../../..$HOSTFILE' 2>/dev/null
    ls -la /session/.. >/dev/null
    true")
  [[ "$out" != *"$HOST_TOKEN"* ]] || fail "the guest ($who) read the host file through a symlink: $out"
  log "ok: the guest ($who) reads nothing outside /session through symlinks"
done
# On the host, the links the guest made are inert (mapped-xattr keeps them
# as plain files) and nothing followed them out.
expect_eq "host file untouched" "$HOST_TOKEN" "$(cat "$HOSTFILE")"
grep -rlF -f "$TEST_TMP/token.pat" "$d/repo" | sed "s|$d/repo/||" | sort | tr '\n' ' ' >"$TEST_TMP/hits"
expect_eq "only the legitimate copy of the token is in the session" "inside.txt " "$(cat "$TEST_TMP/hits")"

agent-stop "$id" >/dev/null
expect_no_qemu "$id"
