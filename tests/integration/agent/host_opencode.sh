#!/usr/bin/env bash
# The scripted model server against the real opencode, on the host (no VM):
# the opencode binary of the guest image's npm cache, its HOME in a temp
# folder, every other address it tries (models.opencode.ai, the npm registry)
# sent to a closed local port through HTTPS_PROXY. Shows what the guest tests
# rely on: the models opencode asks for, that the scripted `write` lands in the
# repository, that the key arrives in x-api-key, that `--continue` carries the
# earlier turns, and which upstream errors opencode shows and stops at.
source "$AGENT_VM_SOURCE/tests/integration/lib.sh"
source "$AGENT_VM_SOURCE/tests/integration/agent/model_lib.sh"

tgz=$(ls "${HOME}"/.agent-vm/cache/guest/npm/opencode-linux-x64-*.tgz 2>/dev/null | sort -V | tail -1)
[ -n "$tgz" ] || fail "no opencode-linux-x64-*.tgz under ~/.agent-vm/cache/guest/npm (build the default image first: agent-vm image build)"
mkdir -p "$TEST_TMP/oc"
tar -xzf "$tgz" -C "$TEST_TMP/oc"
OPENCODE="$TEST_TMP/oc/package/bin/opencode"
log "opencode from $(basename "$tgz")"

start_model_server "$AGENT_VM_SOURCE/tests/model_server/agent_test.json"
secret="sk-test-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf %s "$secret" >"$TEST_TMP/pat"
closed=$(free_port)  # nothing listens there: every outside fetch fails at once

repo="$TEST_TMP/repo"
git init -q -b main "$repo"
git -C "$repo" -c user.name=t -c user.email=t@t commit -q --allow-empty -m root

# opencode_run <seconds> <args...>: runs opencode in the repo; output in $TEST_TMP/out.txt.
opencode_run() {
  local secs=$1; shift
  ( cd "$repo" && env -i PATH=/usr/bin:/bin HOME="$TEST_TMP/ochome" TERM=dumb \
      XDG_CONFIG_HOME="$TEST_TMP/ochome/config" XDG_DATA_HOME="$TEST_TMP/ochome/data" \
      XDG_CACHE_HOME="$TEST_TMP/ochome/cache" XDG_STATE_HOME="$TEST_TMP/ochome/state" \
      HTTPS_PROXY="http://127.0.0.1:$closed" HTTP_PROXY="http://127.0.0.1:$closed" NO_PROXY=127.0.0.1 \
      ANTHROPIC_BASE_URL="$MODEL_URL" ANTHROPIC_API_KEY="$(cat "$TEST_TMP/pat")" \
      timeout "$secs" "$OPENCODE" run "$@" ) >"$TEST_TMP/out.raw" 2>&1
  local rc=$?
  sed 's/\x1b\[[0-9;]*m//g' "$TEST_TMP/out.raw" >"$TEST_TMP/out.txt"  # without colours
  return $rc
}

one="Create a file named agent-test-1.txt containing exactly this line: agent-vm test: first file"
two="Now create a file named agent-test-2.txt containing exactly this line: agent-vm test: second file"

log "a prompt: title, the write, the final text"
t0=$SECONDS
opencode_run 600 "$one" || fail "opencode run exited $? after $((SECONDS - t0))s: $(tail -20 "$TEST_TMP/out.txt")"
log "took $((SECONDS - t0))s"
expect_eq "the file the script names" "agent-vm test: first file" "$(cat "$repo/agent-test-1.txt")"
expect_match "the title request: a small model, no tools" '^claude-haiku' \
  "$(model_requests '.tools==false' | head -1 | jq -r .model)"
expect_match "the main request's model" '^claude-sonnet' "$(model_requests '.tools' | head -1 | jq -r .model)"
expect_eq "the main request offers write and bash" "true" \
  "$(model_requests '.tools' | head -1 | jq '.tool_names | index("write") != null and index("bash") != null')"
expect_eq "streamed" "true" "$(model_requests '.tools' | head -1 | jq .stream)"
expect_eq "the tool_result comes back (prompt, tool_use, tool_result)" 3 \
  "$(model_requests '.tools' | tail -1 | jq .message_count)"
expect_eq "every request carries the key in x-api-key" 0 \
  "$(jq -r --arg k "$secret" 'select(.headers["x-api-key"] != $k) | .path' "$MODEL_LOG" | wc -l)"
expect_eq "the key on no command line" 0 "$(cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\0' '\n' | grep -cFf "$TEST_TMP/pat" || true)"
expect_match "its output shows the write" 'Write .*agent-test-1.txt' "$(cat "$TEST_TMP/out.txt")"

log "--continue: the earlier turns come along"
: >"$MODEL_LOG"
opencode_run 600 --continue "$two" || fail "opencode run --continue exited $?: $(tail -20 "$TEST_TMP/out.txt")"
expect_eq "the second file" "agent-vm test: second file" "$(cat "$repo/agent-test-2.txt")"
req=$(model_requests '.tools and (.answer | startswith("write"))' | head -1)
expect_eq "the follow-up's request carries 5 messages" 5 "$(jq .message_count <<<"$req")"
expect_eq "with the first prompt's text" true "$(jq --arg p "agent-test-1.txt" '.messages[0].text | contains($p)' <<<"$req")"

# Measured with opencode 1.18.34 (`opencode run`): a 400 invalid_request_error
# or a 403 permission_error is asked once, shown ("Error: <message>") and the
# turn ends; a 429 rate_limit_error or a 500 api_error is retried with backoff
# (6 attempts of the main request, ~4, 6, 9, 20, 41 s apart; the title request
# 3 attempts) and then shown. A refusal that must reach the agent's screen at
# once (the gateway's budget) is therefore a 400 invalid_request_error, as
# Anthropic's own answer to an exhausted credit balance.
log "400: shown at once, not retried"
set_model_mode '.mode="error" | .error={status:400,type:"invalid_request_error",message:"Scripted refusal: token budget exhausted"}'
: >"$MODEL_LOG"
t0=$SECONDS
opencode_run 600 --continue "Create a third file" && fail "opencode run succeeded against a 400"
log "opencode stopped after $((SECONDS - t0))s"
expect_match "the error is shown" 'Error: Scripted refusal: token budget exhausted' "$(cat "$TEST_TMP/out.txt")"
expect_eq "asked once" 1 "$(model_requests '.tools' | wc -l)"

# A server that asks for its retries 0.2 s apart (retry-after-ms) is obeyed.
log "500: retried a bounded number of times, then shown"
set_model_mode '.mode="error" | .error={status:500,type:"api_error",message:"Scripted upstream failure",retry_after_ms:200}'
: >"$MODEL_LOG"
t0=$SECONDS
opencode_run 900 --continue "Create a fourth file" && fail "opencode run succeeded against a 500"
log "opencode stopped after $((SECONDS - t0))s"
expect_match "the error is shown" 'Error: Scripted upstream failure' "$(cat "$TEST_TMP/out.txt")"
n=$(model_requests '.tools' | wc -l)
[ "$n" -ge 2 ] && [ "$n" -le 10 ] || fail "the main request was asked $n times (expected a few retries, then an end)"
log "ok: the main request was asked $n times"
