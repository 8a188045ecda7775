#!/usr/bin/env bash
# The README's command reference must match --help: every option a command
# accepts is documented there, and every option documented for a command
# exists.
set -u
bin=${1:?agent-vm binary}; readme=${2:?README.md}
fail=0
for cmd in spawn list attach stop pause unpause pool resume rm logs exec doctor diff export push test; do
  help=$("$bin" "$cmd" --help) || { echo "FAIL: agent-vm $cmd --help exited non-zero"; fail=1; continue; }
  # Long options from --help (skip --help itself).
  opts=$(grep -oE '^ +(-[a-zA-Z],)?--[a-z][a-z-]*' <<<"$help" | grep -oE -- '--[a-z][a-z-]*' | grep -v -- '--help' | sort -u)
  # The README's section for this command: from its heading to the next one.
  section=$(awk -v h="### agent-$cmd" -v h2="### agent-vm $cmd" '
    $0 == h || index($0, h2) == 1 { on = 1; next }
    /^##/ { on = 0 }
    on' "$readme" | sed -E 's/opencode --[a-z]+//g')
  [ -n "$section" ] || { echo "FAIL: README has no section for $cmd"; fail=1; continue; }
  for o in $opts; do
    grep -q -- "$o" <<<"$section" || { echo "FAIL: README's $cmd section does not mention $o"; fail=1; }
  done
  for o in $(grep -oE -- '--[a-z][a-z-]+' <<<"$section" | sort -u); do
    grep -q -- "$o" <<<"$opts" || { echo "FAIL: README documents $o for $cmd, which --help does not list"; fail=1; }
  done
  echo "ok: $cmd ($(wc -w <<<"$opts") options)"
done
exit $fail
