#!/usr/bin/env bash
# Fails when a layer includes one above it (arrows point down only).
#   commands -> sessions -> launcher -> qmp -> json -> util
set -u
root=${1:?source dir}
cd "$root" || exit 2
declare -A forbidden=(
  [util]="json qmp launcher sessions commands"
  [json]="qmp launcher sessions commands"
  [qmp]="launcher sessions commands"
  [launcher]="sessions commands"
  [sessions]="commands"
)
bad=0
for layer in "${!forbidden[@]}"; do
  for above in ${forbidden[$layer]}; do
    hits=$(grep -rnE "#include +\"${above}/" "$layer" --include='*.h' --include='*.cc' 2>/dev/null)
    if [ -n "$hits" ]; then
      echo "layer '$layer' must not include '$above/':"
      echo "$hits"
      bad=1
    fi
  done
done
[ $bad -eq 0 ] && echo "layering ok: util <- json <- qmp <- launcher <- sessions <- commands"
exit $bad
