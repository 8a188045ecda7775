# Helpers of the user-facing lifecycle tests, on top of tests/integration/lib.sh.
source "$AGENT_VM_SOURCE/tests/integration/lib.sh"

# What the sessions folder holds besides the (empty) lock folder: session
# folders, half-made or half-removed dot-folders, lock files.
sessions_left() {
  [ -d "$AGENT_VM_SESSIONS" ] || return 0
  find "$AGENT_VM_SESSIONS" -mindepth 1 ! -path "$AGENT_VM_SESSIONS/.locks" | sed "s|^$AGENT_VM_SESSIONS/||" | sort
}

# The one session folder's id (fails unless there is exactly one).
only_session() {
  local ids
  ids=$(find "$AGENT_VM_SESSIONS" -mindepth 1 -maxdepth 1 -type d ! -name '.*' -printf '%f\n' 2>/dev/null)
  [ "$(grep -c . <<<"$ids")" = 1 ] || return 1
  echo "$ids"
}

# The first 8 bytes an SSH server sends on 127.0.0.1:<port> ("SSH-2.0-").
ssh_banner() { timeout 20 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && head -c 8 <&3' _ "$1" 2>/dev/null || true; }

# wait_file <path> <seconds>: until the file exists and is not empty.
wait_file() {
  local deadline=$((SECONDS + $2))
  until [ -s "$1" ]; do
    [ $SECONDS -lt $deadline ] || fail "$1 did not appear within $2s"
    sleep 0.1
  done
}

# wait_gone <pid> <seconds>: until the process has exited (a zombie counts).
wait_gone() {
  local deadline=$((SECONDS + $2))
  while [ -e "/proc/$1" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; do
    [ $SECONDS -lt $deadline ] || fail "process $1 still alive after $2s"
    sleep 0.05
  done
}

# QEMUs of session <id>, found by their -name as the cleanup finds them.
qemus_of() { pgrep -f -- "-name agent-vm-$1( |,|\$)" || true; }
expect_no_qemu() { expect_eq "no QEMU of $1" "" "$(qemus_of "$1" | tr '\n' ' ')"; }
meta_of() { echo "$AGENT_VM_SESSIONS/$1/meta.json"; }

# A line of the guest kernel's on the console (quiet: warnings and worse).
KERNEL_LINE='\[ *[0-9]+\.[0-9]{6}\] '
