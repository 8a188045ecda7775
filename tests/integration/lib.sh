# Shared by the scripted integration tests. Each test gets its own
# AGENT_VM_HOME (sessions, locks, caches) in a temp folder and the real guest
# images; everything it starts is stopped on exit, pass or fail.
set -euo pipefail

: "${AGENT_VM_SOURCE:?run through ctest (AGENT_VM_SOURCE names the source tree)}"
export AGENT_VM_IMAGES="${AGENT_VM_IMAGES:-${HOME}/.agent-vm/images}"
TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/agent-vm-test.XXXXXX")
export AGENT_VM_HOME="$TEST_TMP/home"
export AGENT_VM_SESSIONS="$AGENT_VM_HOME/sessions"
mkdir -p "$AGENT_VM_HOME"
# The accelerator verdict is a host fact: share the user's cache so a KVM
# probe runs once per host, not once per test.
if [ -d "${HOME}/.agent-vm/cache" ]; then ln -s "${HOME}/.agent-vm/cache" "$AGENT_VM_HOME/cache"; fi
STAND_IN=/usr/libexec/agent-vm/stand-in-agent
TEST_NAME=$(basename "$0" .sh)
_bg_pids=()
_failed=0

log() { printf '[%s %s] %s\n' "$TEST_NAME" "$(date +%T)" "$*" >&2; }
fail() { log "FAIL: $*"; _failed=1; exit 1; }

cleanup() {
  local rc=$?
  set +e
  # A failed test shows the end of every guest console it made (a boot that
  # stalled says where), before the folders go.
  if { [ $rc -ne 0 ] || [ $_failed -ne 0 ]; } && [ -d "$AGENT_VM_SESSIONS" ]; then
    for c in "$AGENT_VM_SESSIONS"/*/run/console.log "$AGENT_VM_SESSIONS"/.pool/*/run/console.log; do
      [ -s "$c" ] || continue
      log "console of ${c#"$AGENT_VM_SESSIONS"/} ($(stat -c %s "$c") bytes), last lines:"
      tail -n 15 "$c" | sed 's/^/    /' >&2
    done
  fi
  # The warm pool first (a spawn may start a refill), then its leftovers.
  if [ -d "$AGENT_VM_SESSIONS/.pool" ]; then
    agent-vm pool --size 0 >/dev/null 2>&1
    for d in "$AGENT_VM_SESSIONS"/.pool/*/ "$AGENT_VM_SESSIONS"/.pool/.taken-*/; do
      [ -d "$d" ] || continue
      id=$(basename "$d"); id=${id#.taken-}
      pkill -KILL -f -- "-name agent-vm-$id( |,|\$)" 2>/dev/null
    done
  fi
  # Every session this test made goes, with its VM.
  if [ -d "$AGENT_VM_SESSIONS" ]; then
    for d in "$AGENT_VM_SESSIONS"/*/; do
      [ -d "$d" ] || continue
      id=$(basename "$d")
      agent-vm rm --force "$id" >/dev/null 2>&1
      pkill -KILL -f -- "-name agent-vm-$id( |,|\$)" 2>/dev/null
    done
    # A session resumed on a pooled VM runs under the slot's name; any QEMU
    # still sharing a folder of this test's goes too.
    pkill -KILL -f -- "qemu-system.*$AGENT_VM_SESSIONS/" 2>/dev/null
  fi
  for p in "${_bg_pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  drv kill-server 2>/dev/null
  rm -rf "$TEST_TMP"
  if [ $rc -eq 0 ] && [ $_failed -eq 0 ]; then log "PASS"; else log "exit $rc"; fi
  exit $rc
}
trap cleanup EXIT

# expect_eq <what> <expected> <actual>
expect_eq() { [ "$2" = "$3" ] || fail "$1: expected '$2', got '$3'"; log "ok: $1 = $3"; }
# expect_match <what> <regex> <actual>
expect_match() { [[ "$3" =~ $2 ]] || fail "$1: '$3' does not match /$2/"; log "ok: $1 ~ /$2/"; }

# A free TCP port on 127.0.0.1 (bound by the kernel, then released).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits until something accepts on 127.0.0.1:$1, for at most $2 seconds.
wait_port() {
  local deadline=$((SECONDS + $2))
  until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || fail "nothing listens on 127.0.0.1:$1 after $2s"
    sleep 0.05
  done
}

# make_repo <dir>: a repository with main (README), a branch `feature`
# (feature.txt) and a tag v1 on main.
make_repo() {
  local dir=$1
  git init -q -b main "$dir"
  git -C "$dir" -c user.name=t -c user.email=t@t commit -q --allow-empty -m root
  echo "hello from main" > "$dir/README"
  git -C "$dir" add README
  git -C "$dir" -c user.name=t -c user.email=t@t commit -q -m "add README"
  git -C "$dir" tag v1
  git -C "$dir" checkout -q -b feature
  echo "feature work" > "$dir/feature.txt"
  git -C "$dir" add feature.txt
  git -C "$dir" -c user.name=t -c user.email=t@t commit -q -m "feature"
  git -C "$dir" checkout -q main
}

# serve_git <base dir>: git daemon on a free port on 127.0.0.1; sets GIT_PORT.
serve_git() {
  GIT_PORT=$(free_port)
  git daemon --reuseaddr --export-all --base-path="$1" --listen=127.0.0.1 --port="$GIT_PORT" "$1" \
    >"$TEST_TMP/git-daemon.log" 2>&1 &
  _bg_pids+=($!)
  wait_port "$GIT_PORT" 20
}

# json <jq filter> <json text>
json() { jq -r "$1" <<<"$2"; }

# Session fields from agent-list --json.
list_field() { agent-vm list --json | jq -r --arg id "$1" ".[] | select(.id==\$id) | $2"; }

# A pty driver: runs a command in a detached tmux server of our own: its
# socket in the test's folder, no configuration file and sh for the panes
# (a user's ~/.tmux.conf or login shell could change the shell, the
# terminal type or the keys).
drv() { SHELL=/bin/sh TMUX_TMPDIR="$TEST_TMP" tmux -f /dev/null -L drv "$@"; }
# wait_screen <tmux target> <regex> <seconds>: until the pane shows regex.
wait_screen() {
  local deadline=$((SECONDS + $3))
  until drv capture-pane -p -t "$1" 2>/dev/null | grep -Eq -- "$2"; do
    [ $SECONDS -lt $deadline ] || { drv capture-pane -p -t "$1" >&2 || true; fail "screen of $1 never showed /$2/"; }
    sleep 0.1
  done
}

# secret_in_guest <id> <pattern file>: every place inside the guest (as root)
# that holds the secret: files, process environments and command lines, the
# kernel's command line. Prints one line per hit; nothing means clean.
# Files are searched where the guest can write: every mounted filesystem but
# the image's read-only squashfs (built before any secret existed) and the
# kernel's virtual ones; the root overlay's writes are its upper folder on the
# tmpfs at /run/agent-vm/overlay. A copy planted in /etc (so in that upper
# folder) must be found, or the search is not to be trusted and the test fails.
# The secret goes in on stdin, into a root-only pattern file that grep reads
# (no command line of the check holds it) and that is left out of the hits.
secret_in_guest() {
  local out
  out=$(agent-exec "$1" --root -i -- bash -c '
    set -u
    pat=/run/.agent-vm-secret-pattern control=/etc/.agent-vm-secret-control
    umask 077
    cat >"$pat"
    cp "$pat" "$control"
    umask 022
    awk '\''$3 !~ /^(squashfs|overlay|proc|sysfs|cgroup2?|securityfs|debugfs|tracefs|configfs|bpf|pstore|mqueue|hugetlbfs|fusectl|binfmt_misc|autofs|devpts|efivarfs|nsfs)$/ { print $2 }'\'' /proc/self/mounts |
      sort -u | while read -r m; do find "$m" -xdev -type f -print0 2>/dev/null; done |
      xargs -0 -r grep -lsF -D skip -f "$pat" 2>/dev/null | grep -vxF "$pat"
    rm -f "$control"
    # Every process at once: one grep, not programs per process (each costs
    # ~0.2 s under TCG).
    for f in $(grep -lsaF -f "$pat" /proc/[0-9]*/cmdline /proc/[0-9]*/environ); do
      p=${f#/proc/}; p=${p%%/*}
      echo "process $p: $(tr "\0" " " </proc/$p/cmdline)"
    done
    grep -lsF -f "$pat" /proc/cmdline
    rm -f "$pat"
    true' <"$2") || fail "the search for the secret in guest $1 failed"
  local planted=/run/agent-vm/overlay/upper/etc/.agent-vm-secret-control
  grep -qxF "$planted" <<<"$out" ||
    fail "the search in guest $1 missed a copy of the secret planted in /etc: it cannot be trusted (found: $out)"
  grep -vxF "$planted" <<<"$out" || true
}
