#!/usr/bin/env bash
# An ordinary user (nobody) runs a session with a readable copy of the image:
# QEMU runs as that user, never as root on its behalf, under its seccomp
# sandbox with no capabilities; the share uses 9p security_model=none, so
# files the guest writes belong to that user on the host; and guest-made
# symlinks, real host symlinks in this model, still read nothing outside the
# session folder, even a host file that user may read.
source "$AGENT_VM_SOURCE/tests/integration/reliability/rlib.sh"

id nobody >/dev/null 2>&1 || fail "this test needs the user 'nobody'"
NB_UID=$(id -u nobody)
NB_GID=$(id -g nobody)
setup_repo

# nobody's own agent-vm home (the lib's cleanup, as root, still finds its
# sessions there); the cached accelerator verdict is root's: not linked.
chmod 0711 "$TEST_TMP"
rm -f "$AGENT_VM_HOME/cache"
chown -R nobody:nogroup "$AGENT_VM_HOME"
readable_image "$TEST_TMP/images"
# A host file nobody may read, outside the session folder.
mkdir -p -m 0755 "$TEST_TMP/outside"
HOST_TOKEN="nobody-may-read-this-$RANDOM$RANDOM"
echo "$HOST_TOKEN" >"$TEST_TMP/outside/readable.txt"
chmod 0644 "$TEST_TMP/outside/readable.txt"
printf '%s' "$HOST_TOKEN" >"$TEST_TMP/token.pat"
as_nobody() {
  setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all \
    env -i PATH="$PATH" HOME="$AGENT_VM_HOME" AGENT_VM_HOME="$AGENT_VM_HOME" \
    AGENT_VM_SESSIONS="$AGENT_VM_SESSIONS" AGENT_VM_IMAGES="$TEST_TMP/images" "$@"
}
expect_eq "nobody reads the host file (only confinement can stop the guest)" "$HOST_TOKEN" \
  "$(as_nobody cat "$TEST_TMP/outside/readable.txt")"

log "spawn as nobody"
id=$(as_nobody agent-spawn --repo "$REPO_URL" --agent-cmd "$STAND_IN" --memory 512M --no-wait -q)
d="$AGENT_VM_SESSIONS/$id"
pid=$(qemu_pid_of "$id")
expect_eq "the session folder is nobody's" "$NB_UID 700" "$(stat -c '%u %a' "$d")"
expect_eq "QEMU's uids are nobody's" "$NB_UID $NB_UID $NB_UID $NB_UID" "$(awk '/^Uid:/{print $2, $3, $4, $5}' "/proc/$pid/status")"
expect_eq "QEMU's gids are nogroup's" "$NB_GID $NB_GID $NB_GID $NB_GID" "$(awk '/^Gid:/{print $2, $3, $4, $5}' "/proc/$pid/status")"
expect_eq "QEMU has no capabilities" 0000000000000000 "$(awk '/^CapEff:/{print $2}' "/proc/$pid/status")"
expect_eq "seccomp filter on QEMU" 2 "$(awk '/^Seccomp:/{print $2}' "/proc/$pid/status")"
expect_eq "no_new_privs on QEMU" 1 "$(awk '/^NoNewPrivs:/{print $2}' "/proc/$pid/status")"
expect_match "9p share without privileges" "security_model=none" "$(tr '\0' ' ' <"/proc/$pid/cmdline")"
expect_eq "nothing of the session runs as root" "" \
  "$(ps -o user=,pid=,args= -u root | grep -F -- "$d" | grep -v -e grep -e "ps -o" || true)"
as_nobody agent-vm list --json >"$TEST_TMP/list.json"
expect_eq "nobody lists it running" running "$(jq -r --arg id "$id" '.[] | select(.id==$id) | .status' "$TEST_TMP/list.json")"

log "the guest writes as nobody"
wait_guest "$id" 300 as_nobody
expect_eq "the guest's agent user is the host user" "$NB_UID" "$(as_nobody agent-exec "$id" -- id -u)"
as_nobody agent-exec "$id" -- sh -c 'echo from-the-guest >guest-wrote.txt && mkdir -p made-in-guest && sync'
expect_eq "a file the guest wrote is nobody's on the host" "$NB_UID:$NB_GID" "$(stat -c '%u:%g' "$d/repo/guest-wrote.txt")"
expect_eq "a folder the guest made is nobody's" "$NB_UID:$NB_GID" "$(stat -c '%u:%g' "$d/repo/made-in-guest")"
expect_eq "its content" from-the-guest "$(cat "$d/repo/guest-wrote.txt")"

log "9p with security_model=none: symlinks out of /session read nothing"
for who in agent root; do
  as=(); [ $who = root ] && as=(--root)
  out=$(as_nobody agent-exec "$id" "${as[@]}" -- sh -c "
    cd /session/repo
    ln -sf '$TEST_TMP/outside/readable.txt' abs-$who
    ln -sf '../../../../outside/readable.txt' rel-$who
    ln -sfn / root-$who
    for l in abs-$who rel-$who root-$who$TEST_TMP/outside/readable.txt; do cat \$l 2>/dev/null; done
    true" 2>/dev/null || true)
  [[ "$out" != *"$HOST_TOKEN"* ]] || fail "the guest ($who) read a host file through a symlink: $out"
  # In this model the links are real on the host: the one made relative to
  # the repository does lead to the host file there; only the guest's side
  # must not follow it.
  expect_eq "the guest's link is a real host symlink" "$TEST_TMP/outside/readable.txt" "$(readlink "$d/repo/abs-$who")"
  log "ok: the guest ($who) reads nothing outside /session"
done
expect_eq "the host file is untouched" "$HOST_TOKEN" "$(cat "$TEST_TMP/outside/readable.txt")"

log "root in the guest plants symlinks where the host writes by name"
# run/ is hidden from the guest, ssh/ is not; root in the guest can reach
# both, and in this model its symlinks are real on the host. Nothing the
# host (or QEMU, as this user) writes on the next start may follow them.
CANARY="$TEST_TMP/outside/canary.txt"
echo canary-intact >"$CANARY"
mkdir -m 0755 "$TEST_TMP/outside/victim"
chown nobody:nogroup "$CANARY" "$TEST_TMP/outside/victim"
as_nobody agent-exec "$id" --root -- sh -c "
  umount /session/run && cd /session/run &&
  for f in qemu.log qemu.pid; do rm -f \$f && ln -s '$CANARY' \$f; done &&
  rm -f console.log && ln -s '$TEST_TMP/outside/made-through-a-link' console.log &&
  mv /session/ssh /session/ssh.moved && ln -s '$TEST_TMP/outside/victim' /session/ssh"
fault "guest root replaced run/ files and ssh/ with symlinks to host files"
expect_eq "stop" guest-poweroff "$(as_nobody agent-stop "$id" --json | jq -r '.[0].method')"
set +e
err=$(as_nobody agent-resume "$id" --no-wait 2>&1 >/dev/null)
rc=$?
set -e
expect_eq "resume refuses a session whose ssh/ is a link" 1 "$rc"
expect_match "and says so" "ssh.*symlink.*hint:" "$err"
expect_no_qemu "$id"
expect_eq "nothing written into the link's target" "" "$(ls -A "$TEST_TMP/outside/victim")"
expect_eq "the target's mode unchanged" 755 "$(stat -c %a "$TEST_TMP/outside/victim")"
# The user puts the keys back (as agent-vm's message says to inspect), and resumes.
rm "$d/ssh" && mv "$d/ssh.moved" "$d/ssh"
as_nobody agent-resume "$id" --no-wait -q >/dev/null
expect_eq "the host file behind qemu.log and qemu.pid is intact" canary-intact "$(cat "$CANARY")"
[ ! -e "$TEST_TMP/outside/made-through-a-link" ] || fail "QEMU's console wrote through the guest's link"
expect_eq "qemu.pid is a plain file again, with QEMU's pid" "regular file $(qemu_pid_of "$id")" \
  "$(stat -c %F "$d/run/qemu.pid") $(cat "$d/run/qemu.pid")"
wait_guest "$id" 300 as_nobody
as_nobody agent-exec "$id" --root -- sh -c "
  umount /session/run && mv /session/run /session/run.moved && ln -s '$TEST_TMP/outside/victim' /session/run"
fault "guest root replaced run/ with a symlink to a host folder"
# The monitor's socket went with run/: stop falls back to signals.
expect_match "stop" "^(sigterm|sigkill)$" "$(as_nobody agent-stop "$id" --timeout 3 --json | jq -r '.[0].method')"
expect_no_qemu "$id"
as_nobody agent-resume "$id" --no-wait -q >/dev/null
expect_eq "run/ is a folder of the session again" "directory 700" "$(stat -c '%F %a' "$d/run")"
expect_eq "nothing written into the folder run/ pointed at" "" "$(ls -A "$TEST_TMP/outside/victim")"
expect_eq "its mode unchanged" 755 "$(stat -c %a "$TEST_TMP/outside/victim")"
expect_eq "the canary still intact" canary-intact "$(cat "$CANARY")"
expect_eq "running" running "$(as_nobody agent-vm list --json | jq -r --arg id "$id" '.[] | select(.id==$id) | .status')"

log "remove as nobody"
as_nobody agent-rm --force "$id" >/dev/null
expect_no_qemu "$id"
[ ! -e "$d" ] || fail "the session folder is still there"
[ -e "$TEST_TMP/outside/victim" ] && [ -e "$CANARY" ] || fail "agent-rm removed what the guest's links pointed at"
