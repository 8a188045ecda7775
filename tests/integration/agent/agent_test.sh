#!/usr/bin/env bash
# agent-test exits 0 only when the agent did the work: against a model that
# writes nothing it fails, naming the step, and still leaves no session and no
# repository behind. (Its passing run, against the same scripted server, is
# the first part of agent_loop.)
source "$AGENT_VM_SOURCE/tests/integration/lib.sh"
source "$AGENT_VM_SOURCE/tests/integration/agent/model_lib.sh"

start_model_server "$AGENT_VM_SOURCE/tests/model_server/agent_test.json"
set_model_mode '.rules=[]'
export ANTHROPIC_BASE_URL="$MODEL_URL"
export ANTHROPIC_API_KEY="sk-test-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export TMPDIR="$TEST_TMP/tmp"
mkdir -p "$TMPDIR"

t0=$SECONDS
out=$(agent-test --timeout 150 --json) && fail "agent-test passed with a model that writes nothing: $out"
log "agent-test failed, as it must, after $((SECONDS - t0))s"
expect_eq "its verdict" false "$(json .ok "$out")"
expect_eq "the failed step" "first file" "$(json '[.steps[] | select(.ok|not)][0].step' "$out")"
expect_match "it says why" 'did not write agent-test-1.txt within 150s' \
  "$(json '[.steps[] | select(.ok|not)][0].detail' "$out")"
expect_eq "the model was asked" true "$(model_requests '.tools' | head -1 | jq -e . >/dev/null && echo true)"
expect_eq "no session left" 0 "$(agent-vm list --json | jq length)"
expect_eq "no repository left" "" "$(ls -A "$TMPDIR")"

log "the text form: a line per step, then FAIL"
out=$(agent-test --timeout 1 2>&1) && fail "agent-test passed with a one-second timeout"
expect_match "the steps and the verdict" 'spawn: FAILED.*FAIL: agent-test' "$(tr '\n' ' ' <<<"$out")"
expect_eq "no session left" 0 "$(agent-vm list --json | jq length)"
