#!/usr/bin/env bash
# The product's job with the real opencode in real guests, against the
# scripted model server on the host's loopback, through the model gateway:
#  1. `agent-test --keep-running` passes: spawn with a prompt, the agent
#     writes the file the model asks for and it lands in the session's
#     repository on the host; stop; `agent-resume --prompt` gives a follow-up
#     whose request carries the earlier turns (the conversation outlived the
#     VM), and the second file lands too. The session stays up for the rest.
#  2. The model saw the real key, injected on the host; inside the guest, as
#     root, no file, process environment or the kernel command line holds it.
#  3. An upstream answering 500 (asking for retries 0.2 s apart, as
#     retry-after-ms, which the gateway passes on), then one that hangs (the
#     gateway's read deadline set to 2 s in gateway.json): the agent's screen
#     shows an error in bounded time.
#  4. The token budget (set in gateway.json to one more answer; agent-resume
#     --max-tokens writing it is gateway.sh's): a request within it goes
#     through (the agent writes its file), the one past it is refused, not
#     retried, and the screen says so.
#  5. Once stopped, no gateway process and no connection to the model is left.
source "$AGENT_VM_SOURCE/tests/integration/lib.sh"
source "$AGENT_VM_SOURCE/tests/integration/agent/model_lib.sh"

start_model_server "$AGENT_VM_SOURCE/tests/model_server/agent_test.json"
# Fixed usage per answer (120 tokens), so the budget below is exact.
set_model_mode '.usage={input_tokens:100,output_tokens:20}'
secret="sk-test-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf %s "$secret" >"$TEST_TMP/pat"
export ANTHROPIC_BASE_URL="$MODEL_URL"

# This test's gateway processes (their command lines name this test's home),
# and the connections to the model server.
gateways() { { pgrep -f -- "agent-vm gateway .*$AGENT_VM_HOME" || true; } | wc -l; }
model_connections() { ss -Htn state established "( dport = :$MODEL_PORT )" | wc -l; }
# The agent's screen, and a prompt typed into its TUI.
screen() { agent-exec "$id" -- tmux capture-pane -p -t agent; }
type_prompt() {
  agent-exec "$id" -- tmux send-keys -t agent -l "$1"
  agent-exec "$id" -- tmux send-keys -t agent Enter
}
wait_guest_screen() {
  local deadline=$((SECONDS + $2))
  until screen 2>/dev/null | grep -Eq -- "$1"; do
    [ $SECONDS -lt $deadline ] || { screen >&2 || true; fail "the agent's screen never showed /$1/ within $2s"; }
    sleep 2
  done
  log "ok: the agent's screen shows /$1/"
}
since() { echo "$((SECONDS - $1))s"; }
# The agent's turn is over, retries included: opencode's server (guest-local
# 127.0.0.1:4096, where a resume with a follow-up starts it) reports no
# session busy or retrying. (Its screen shows an error while it still retries.)
turn_over() {
  [ "$(agent-exec "$id" -- curl -sf -m 10 http://127.0.0.1:4096/session/status 2>/dev/null |
       jq '[.[] | select(.type != "idle")] | length' 2>/dev/null)" = 0 ]
}
wait_turn_over() {
  local deadline=$((SECONDS + $1))
  until turn_over; do
    [ $SECONDS -lt $deadline ] || { screen >&2 || true; fail "the agent's turn did not end within $1s"; }
    sleep 2
  done
}
gw_before=$(gateways)

log "agent-test --keep-running: two files, across a stop and a resume with a follow-up"
t0=$SECONDS
out=$(ANTHROPIC_API_KEY="$secret" agent-test --keep-running --json) || fail "agent-test failed: $out"
log "agent-test passed in $(since $t0)"
for s in $(json '.steps[] | "\(.step | gsub(" "; "-"))=\(.took_ms / 1000 | floor)s"' "$out"); do log "  $s"; done
id=$(json .id "$out")
repo=$AGENT_VM_SESSIONS/$id/repo
expect_eq "the first file, written in the guest, in the host's clone" "agent-vm test: first file" "$(cat "$repo/agent-test-1.txt")"
expect_eq "the second file" "agent-vm test: second file" "$(cat "$repo/agent-test-2.txt")"
expect_eq "every request reached the model with the real key" 0 \
  "$(jq -r --arg k "$secret" 'select(.headers["x-api-key"] != $k) | .path' "$MODEL_LOG" | wc -l)"
expect_match "the agent asked for a Claude model" '^claude-' "$(model_requests '.tools' | head -1 | jq -r .model)"
req=$(model_requests '.tools and (.answer | endswith("agent-test-2.txt"))' | head -1)
[ -n "$req" ] || fail "no request was answered with the second file's write"
# At least prompt, tool_use, tool_result: 3 when the stop cut the first turn
# short (its tool_result then shares a message with the follow-up), else 5.
[ "$(jq .message_count <<<"$req")" -ge 3 ] ||
  fail "the follow-up's request carries $(jq .message_count <<<"$req") messages, not the earlier turns"
log "ok: the follow-up's request carries $(jq .message_count <<<"$req") messages"
expect_eq "the first prompt among them" true \
  "$(jq '[.messages[] | select(.role=="user") | .text | contains("agent-test-1.txt")] | any' <<<"$req")"
spent=$(list_field "$id" '(.input_tokens + .output_tokens)')
expect_eq "agent-list counts the model's tokens" "$(( $(model_requests '.mode=="normal"' | wc -l) * 120 ))" "$spent"

expect_eq "the session is still running" running "$(list_field "$id" .status)"
# The follow-up's turn ends with the model's last answer, after the file.
wait_turn_over 600

# The key goes in on stdin (secret_in_guest): no command line holds it.
found=$(secret_in_guest "$id" "$TEST_TMP/pat")
expect_eq "the key in no guest file, environment or command line" "" "$found"
expect_eq "the key on no host command line" 0 "$(cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\0' '\n' | grep -cFf "$TEST_TMP/pat" || true)"

log "the model fails with 500"
# The gateway reads gateway.json at each connection (a connection is a process).
gw=$AGENT_VM_SESSIONS/.host/$id/gateway.json
jq '.read_timeout_ms=2000' "$gw" >"$gw.new" && mv "$gw.new" "$gw"
set_model_mode '.mode="error" | .error={status:500,type:"api_error",message:"Scripted upstream failure",retry_after_ms:200}'
: >"$MODEL_LOG"
t0=$SECONDS
type_prompt "Create a third file"

# opencode retries a 5xx (6 attempts of the main request, here 0.2 s apart), then shows it.
wait_request '.mode=="error"' 900
wait_turn_over 900
wait_guest_screen 'Scripted upstream failure' 60
log "the 500 shown, retries over, after $(since $t0)"
expect_match "the main request was retried a bounded number of times" '^[2-9]$' "$(model_requests '.tools' | wc -l)"

log "a model that never answers: the gateway ends each request at its read deadline"
set_model_mode '.mode="hang"'
: >"$MODEL_LOG"
t0=$SECONDS
type_prompt "Create a fourth file"
wait_request '.mode=="hang"' 300
# 504 from the gateway after 2 s, retried like any 5xx: about 6 x 2 s plus the backoff.
wait_turn_over 900
wait_guest_screen '(did not answer|imed out|timeout)' 60
log "the hang shown, retries over, after $(since $t0)"
expect_eq "the gateway logged 504s" true \
  "$(jq -s '[.[] | select(.status==504)] | length > 0' "$AGENT_VM_SESSIONS/.host/$id/gateway.log")"

log "the budget: one more answer goes through, the next is refused"
spent=$(list_field "$id" '(.input_tokens + .output_tokens)')
jq --argjson m $((spent + 50)) '.max_tokens=$m' "$gw" >"$gw.new" && mv "$gw.new" "$gw"
expect_eq "agent-list's budget" $((spent + 50)) "$(list_field "$id" .max_tokens)"
set_model_mode '.mode="normal" | .rules += [{match:"agent-test-3.txt", path:"agent-test-3.txt", content:"within budget\n", final:"Created agent-test-3.txt."}]'
: >"$MODEL_LOG"
t0=$SECONDS
type_prompt "Create a file named agent-test-3.txt containing exactly this line: within budget"
wait_file "$repo/agent-test-3.txt" "within budget" 600
log "the file within the budget after $(since $t0)"
wait_turn_over 600
wait_guest_screen '(budget|max-tokens)' 60
log "the refusal shown, retries over, after $(since $t0)"
expect_eq "the model saw only the request within the budget" 1 "$(model_requests '.tools' | wc -l)"
# A refusal no retry can pass is shown at once: asked once, not retried.
expect_eq "the gateway refused once, and the agent did not retry" 1 \
  "$(jq -s '[.[] | select(.status==400)] | length' "$AGENT_VM_SESSIONS/.host/$id/gateway.log")"

agent-stop "$id" >/dev/null
expect_eq "no gateway process left" "$gw_before" "$(gateways)"
expect_eq "no connection to the model left" 0 "$(model_connections)"
agent-vm rm "$id" --force >/dev/null
