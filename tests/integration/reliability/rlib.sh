# Helpers of the reliability tests, on top of tests/integration/lib.sh (a
# temp AGENT_VM_HOME per test, git daemon, cleanup of every session on exit).
source "$AGENT_VM_SOURCE/tests/integration/lib.sh"

# Counters for the closing note: each test prints them when it passes.
FAULTS=0
BAD_INPUTS=0
fault() { FAULTS=$((FAULTS + 1)); log "fault #$FAULTS: $*"; }
_print_counts() { log "counts: faults injected=$FAULTS bad inputs tried=$BAD_INPUTS"; }

# The lines of `agent-vm list --json` for a session.
meta_of() { echo "$AGENT_VM_SESSIONS/$1/meta.json"; }
qemu_pid_of() { jq -r '.qemu.pid // empty' "$(meta_of "$1")"; }

# Pids of live QEMUs of session $1 (matched by their -name, as the cleanup does).
qemus_of() { pgrep -f -- "-name agent-vm-$1( |,|\$)" || true; }
expect_no_qemu() { expect_eq "no QEMU of $1 left" "" "$(qemus_of "$1" | tr '\n' ' ')"; }

# wait_gone <pid> <seconds>: until the process is gone (or a zombie).
wait_gone() {
  local deadline=$((SECONDS + $2))
  while [ -e "/proc/$1" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; do
    [ $SECONDS -lt $deadline ] || fail "process $1 still alive after $2s"
    sleep 0.05
  done
}

# wait_guest <id> <seconds> [as-prefix...]: until the session's setup has
# run in the guest (its console says so: the agent's environment exists)
# and the guest agent answers, without waiting for sshd and the agent.
wait_guest() {
  local id=$1 deadline=$((SECONDS + $2))
  shift 2
  wait_file_match "$AGENT_VM_SESSIONS/$id/run/console.log" "agent-vm-setup: ready" $(($deadline - SECONDS))
  until "$@" agent-exec "$id" --root --timeout 10 -- systemctl is-active --quiet agent-vm-setup.service >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || fail "the guest agent of $id does not answer"
    sleep 1
  done
}

# wait_file_match <file> <regex> <seconds>
wait_file_match() {
  local deadline=$((SECONDS + $3))
  until grep -Eq -- "$2" "$1" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || fail "$1 never showed /$2/"
    sleep 0.1
  done
}

# expect_refused <what> <regex> <command...>: the command must fail (exit
# status not 0), say why on stderr (matching regex), name a fix (a "hint:"
# line, unless the regex is a CLI11 usage error), and never crash with an
# internal error. Counts as one bad input.
expect_refused() {
  local what=$1 re=$2
  shift 2
  BAD_INPUTS=$((BAD_INPUTS + 1))
  local err rc
  set +e
  err=$("$@" 2>&1 >/dev/null </dev/null)
  rc=$?
  set -e
  [ $rc -ne 0 ] || fail "$what: succeeded, expected a refusal"
  [[ "$err" =~ $re ]] || fail "$what: message '$err' does not match /$re/"
  [[ "$err" != *"internal error"* ]] || fail "$what: internal error: $err"
  [[ "$err" == *"hint:"* || "$err" == *"--help' for usage"* ]] || fail "$what: no fix named in '$err'"
  log "ok: $what refused (exit $rc): $(head -n1 <<<"$err")"
}

# check_intact <id>: the session folder is whole: meta.json reads (the
# session lists as something other than corrupt), the clone passes git fsck
# and is checked out, the keys and env file are there with their modes, and
# no temporary file of an atomic write is left.
check_intact() {
  local id=$1 d="$AGENT_VM_SESSIONS/$1"
  local st
  st=$(agent-vm list --json | jq -r --arg id "$id" '.[] | select(.id==$id) | .status')
  [ -n "$st" ] && [ "$st" != corrupt ] || fail "$id: meta.json unreadable (status '$st')"
  jq -e --arg id "$id" '.id == $id and .schema == 1' "$d/meta.json" >/dev/null || fail "$id: meta.json wrong"
  git -C "$d/repo" fsck --no-dangling >/dev/null 2>&1 || fail "$id: git fsck of the clone failed"
  [ -f "$d/repo/README" ] || fail "$id: the checkout lost README"
  for f in ssh/id_ed25519 ssh/ssh_host_ed25519_key ssh/authorized_keys env; do
    [ -s "$d/$f" ] || [ "$f" = env ] || fail "$id: $f missing"
  done
  expect_eq "$id env mode" 600 "$(stat -c %a "$d/env")"
  expect_eq "$id folder mode" 700 "$(stat -c %a "$d")"
  local tmps
  tmps=$(find "$d" -maxdepth 1 -name '.*.tmp-*' | wc -l)
  expect_eq "$id: no temporary files left" 0 "$tmps"
}

# readable_image <dir>: a copy of the default image that any user can read
# (hard links where the filesystem allows), in <dir>/default.
readable_image() {
  mkdir -p "$1/default"
  local f
  for f in "$AGENT_VM_IMAGES/default"/*; do
    ln "$f" "$1/default/" 2>/dev/null || cp "$f" "$1/default/"
  done
  chmod -R a+rX "$1"
}

# A repository to clone, served on 127.0.0.1 by git daemon: REPO_URL.
setup_repo() {
  make_repo "$TEST_TMP/git/project.git"
  serve_git "$TEST_TMP/git"
  REPO_URL="git://127.0.0.1:$GIT_PORT/project.git"
}

# Each test names its counts at the end (a trap runs before lib.sh's).
_r_exit() {
  local rc=$?
  set +e
  [ $rc -ne 0 ] || _print_counts
  (exit $rc)
  cleanup
}
trap _r_exit EXIT
