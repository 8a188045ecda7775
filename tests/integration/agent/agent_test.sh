#!/usr/bin/env bash
# agent-test exits 0 only when the agent did the work: against a model that
# writes nothing it fails at the first file, says why, prints a line per step
# and the verdict, and still leaves no session and no repository behind. (Its
# passing run, against the same scripted server, with --json, is the first
# part of agent_loop.)
source "$AGENT_VM_SOURCE/tests/integration/lib.sh"
source "$AGENT_VM_SOURCE/tests/integration/agent/model_lib.sh"

start_model_server "$AGENT_VM_SOURCE/tests/model_server/agent_test.json"
set_model_mode '.rules=[]'
export ANTHROPIC_BASE_URL="$MODEL_URL"
export ANTHROPIC_API_KEY="sk-test-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export TMPDIR="$TEST_TMP/tmp"
mkdir -p "$TMPDIR"

t0=$SECONDS
out=$(agent-test --timeout 60 2>&1) && fail "agent-test passed with a model that writes nothing: $out"
log "agent-test failed, as it must, after $((SECONDS - t0))s"
printf '%s\n' "$out" >&2
expect_match "the spawn went well" '\] spawn: ok in ' "$out"
expect_match "the first file did not come, and it says why" \
  '\] first file: FAILED in [0-9.]+s - the agent did not write agent-test-1.txt within 60s' "$out"
expect_match "the session was removed all the same" '\] remove: ok in ' "$out"
expect_match "the verdict, last" 'FAIL: agent-test in [0-9.]+s$' "$out"
expect_eq "no session left" 0 "$(agent-vm list --json | jq length)"
expect_eq "no repository left" "" "$(ls -A "$TMPDIR")"
