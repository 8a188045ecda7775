#!/usr/bin/env bash
# `agent-test` against the scripted model server: the real agent in a real
# guest does both edits (spawn, then resume with a follow-up), the command
# says PASS with its steps, exits 0 and leaves no session behind.
source "$AGENT_VM_SOURCE/tests/integration/lib.sh"
source "$AGENT_VM_SOURCE/tests/integration/agent/model_lib.sh"

start_model_server "$AGENT_VM_SOURCE/tests/model_server/agent_test.json"
export ANTHROPIC_BASE_URL="$MODEL_URL"
export ANTHROPIC_API_KEY="sk-test-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"

t0=$SECONDS
out=$(agent-test --timeout 900 --json) || fail "agent-test failed: $out"
log "agent-test took $((SECONDS - t0))s"
expect_eq "passed" true "$(json .ok "$out")"
expect_eq "its steps" "repository spawn first-file stop resume second-file stop remove" \
  "$(json '[.steps[].step | gsub(" "; "-")] | join(" ")' "$out")"
for s in $(json '.steps[] | "\(.step | gsub(" "; "-"))=\(.took_seconds | floor)s"' "$out"); do log "  $s"; done
expect_eq "the model was asked for both files" 2 "$(model_requests '.answer | startswith("write")' | wc -l)"
expect_eq "no session left" 0 "$(agent-vm list --json | jq length)"

log "a model that never writes the file: agent-test fails, naming the step"
set_model_mode '.rules=[]'
out=$(agent-test --timeout 240 --json) && fail "agent-test passed with a model that writes nothing"
expect_eq "failed" false "$(json .ok "$out")"
expect_eq "at the first file" "first file" "$(json '[.steps[] | select(.ok|not)][0].step' "$out")"
expect_eq "no session left" 0 "$(agent-vm list --json | jq length)"
