#!/usr/bin/env bash
# guest/common/opencode-models: a provider's entry of the models database in
# an opencode binary (a JavaScript object literal among other bytes) comes out
# as JSON with the same values; a provider the binary lacks fails by name.
set -euo pipefail
src=${1:?usage: opencode_models.sh SOURCE_DIR}
tool="$src/guest/common/opencode-models"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

{
  head -c 4096 /dev/urandom | tr -d '\n'
  printf '%s' 'other:{id:"other",models:{}},anthropic:{id:"anthropic",env:["ANTHROPIC_API_KEY"],'
  printf '%s' 'npm:"@ai-sdk/anthropic",models:{"claude-x-1":{id:"claude-x-1",name:"Claude \x41 \u00e9 \"q\"",'
  printf '%s' "attachment:!0,reasoning:!1,temperature:true,note:'single',status:void 0,"
  printf '%s' 'limit:{context:2e5,output:64000},cost:{input:.8,output:-4.5},tags:["a",[1,2]]}}},xai:{id:"xai"}'
  head -c 4096 /dev/urandom
} >"$tmp/bin"

"$tool" "$tmp/bin" anthropic >"$tmp/out.json" || fail "the tool failed on a binary with the entry"
python3 - "$tmp/out.json" <<'PY' || fail "wrong JSON (above)"
import json, sys
got = json.load(open(sys.argv[1]))
want = {"anthropic": {"id": "anthropic", "env": ["ANTHROPIC_API_KEY"], "npm": "@ai-sdk/anthropic",
        "models": {"claude-x-1": {"id": "claude-x-1", "name": "Claude A \u00e9 \"q\"", "attachment": True,
                   "reasoning": False, "temperature": True, "note": "single", "status": None,
                   "limit": {"context": 200000.0, "output": 64000}, "cost": {"input": 0.8, "output": -4.5},
                   "tags": ["a", [1, 2]]}}}}
if got != want:
    print("got ", got, "\nwant", want, file=sys.stderr)
    sys.exit(1)
PY
echo "ok: the entry converts"

if "$tool" "$tmp/bin" google >"$tmp/none.json" 2>"$tmp/err"; then fail "a missing provider did not fail"; fi
grep -q "no built-in models entry for 'google'" "$tmp/err" || fail "the error does not name the provider: $(cat "$tmp/err")"
printf 'x anthropic:{id:"anthropic",models:{}} y' >"$tmp/empty"
if "$tool" "$tmp/empty" anthropic >/dev/null 2>"$tmp/err"; then fail "an entry without models did not fail"; fi
grep -q "has no models" "$tmp/err" || fail "unexpected error: $(cat "$tmp/err")"
echo "ok: missing or empty entries fail by name"
echo "2 passed, 0 failed"
