#!/usr/bin/env bash
# The product's job with the real opencode in a real guest: a prompt reaches
# the scripted model through the host's model gateway, the agent writes the
# file the model asks for, and the file lands in the session's repository on
# the host. Then: the key stays on the host; stop and `agent-resume --prompt`
# carry the conversation on; the token budget's refusal reaches the agent's
# screen; an upstream failing (500) or hanging gives the agent an error in
# bounded time, leaving no gateway process behind. One spawn, two resumes.
# Needs a guest image with followup.txt support (AGENT_VM_IMAGES).
source "$AGENT_VM_SOURCE/tests/integration/lib.sh"
source "$AGENT_VM_SOURCE/tests/integration/agent/model_lib.sh"

make_repo "$TEST_TMP/git/project.git"
serve_git "$TEST_TMP/git"
start_model_server "$AGENT_VM_SOURCE/tests/model_server/agent_test.json"
# Fixed usage per request, so the budget below is exact.
set_model_mode '.usage={input_tokens:100,output_tokens:20}'
secret="sk-test-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf %s "$secret" >"$TEST_TMP/pat"
export ANTHROPIC_BASE_URL="$MODEL_URL"

# This test's gateway processes (their command lines name this test's home).
gateways() { pgrep -f -- "agent-vm gateway .*$AGENT_VM_HOME" | wc -l; }
# The agent's screen, and a prompt typed into its TUI (as the agent user).
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

one="Create a file named agent-test-1.txt in the repository's top folder containing exactly this line: agent-vm test: first file"
two="Now create a file named agent-test-2.txt in the repository's top folder containing exactly this line: agent-vm test: second file"
gw_before=$(gateways)

log "spawn with a prompt; the agent writes the file through the gateway"
t0=$SECONDS
id=$(ANTHROPIC_API_KEY="$secret" agent-spawn --repo "git://127.0.0.1:$GIT_PORT/project.git" \
       --prompt "$one" --timeout 900 -q)
log "spawned $id (ready) after $(since $t0)"
wait_request '.tools==false' 900
log "the first request (title) after $(since $t0)"
wait_request '.tools' 900
log "the main request after $(since $t0)"
wait_file "$AGENT_VM_SESSIONS/$id/repo/agent-test-1.txt" "agent-vm test: first file" 900
log "the file on the host after $(since $t0)"
wait_request '.tools and .message_count==3' 300
expect_eq "every request reached the model with the real key" 0 \
  "$(jq -r --arg k "$secret" 'select(.headers["x-api-key"] != $k) | .path' "$MODEL_LOG" | wc -l)"
expect_match "the agent asked for a Claude model" '^claude-' "$(model_requests '.tools' | head -1 | jq -r .model)"

# The key goes to grep in a file, so no command line of the check holds it.
expect_eq "the key in no guest file, environment or command line" "" \
  "$(agent-exec "$id" --root -i -- sh -c '
      cat >/run/.pat
      grep -rlsFf /run/.pat /etc /home /root /run /session /tmp /var | grep -v "^/run/.pat$"
      for p in /proc/[0-9]*; do
        grep -lsFf /run/.pat "$p/environ" "$p/cmdline"
      done
      grep -lsFf /run/.pat /proc/cmdline
      rm -f /run/.pat' <"$TEST_TMP/pat")"
expect_eq "the key on no host command line" 0 "$(cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\0' '\n' | grep -cFf "$TEST_TMP/pat" || true)"

log "stop, then resume with a follow-up: the conversation carries on"
agent-stop "$id" >/dev/null
: >"$MODEL_LOG"
t0=$SECONDS
agent-resume "$id" --prompt "$two" --timeout 900 -q >/dev/null
wait_file "$AGENT_VM_SESSIONS/$id/repo/agent-test-2.txt" "agent-vm test: second file" 900
log "the second file on the host after $(since $t0)"
req=$(model_requests '.tools and (.answer | startswith("write"))' | head -1)
[ "$(jq .message_count <<<"$req")" -ge 5 ] || fail "the follow-up's request carries $(jq .message_count <<<"$req") messages, not the earlier turns"
log "ok: the follow-up's request carries $(jq .message_count <<<"$req") messages"
expect_eq "the earlier prompt among them" true \
  "$(jq '[.messages[] | select(.role=="user") | .text | contains("agent-test-1.txt")] | any' <<<"$req")"

# An upstream answering 500: opencode retries it a few times with backoff,
# then shows the error.
log "a 500 from the model reaches the agent's screen"
wait_guest_screen 'Created agent-test-2.txt' 300
set_model_mode '.mode="error" | .error={status:500,type:"api_error",message:"Scripted upstream failure"}'
t0=$SECONDS
type_prompt "Create a third file"
wait_guest_screen 'Scripted upstream failure' 900
log "shown after $(since $t0)"

# The gateway turns a hang into a 504 after its read deadline; opencode
# retries a 5xx (6 attempts, backoff up to ~41 s), so the screen shows the
# error after about 6 deadlines: the bound below assumes a deadline of two
# minutes at most.
log "a model that never answers: the gateway ends the request"
set_model_mode '.mode="hang"'
: >"$MODEL_LOG"
t0=$SECONDS
type_prompt "Create a fourth file"
wait_request '.mode=="hang"' 300
wait_guest_screen '(rror|imed out|timeout).*' 1200
log "shown after $(since $t0)"
agent-stop "$id" >/dev/null
expect_eq "no gateway process left" "$gw_before" "$(gateways)"

# opencode 1.18.34 shows a 400 at once but retries a 429 (6 attempts over
# ~80 s) before showing it: either way the refusal reaches the screen.
log "the token budget: past it the gateway refuses and the agent shows it"
set_model_mode '.mode="normal"'
spent=$(list_field "$id" '(.input_tokens + .output_tokens)')
[ "$spent" -gt 0 ] || fail "agent-list counts no tokens for $id"
: >"$MODEL_LOG"
# Room for one request (120 tokens each), not for a second.
agent-resume "$id" --max-tokens $((spent + 50)) \
  --prompt "Create a file named agent-test-3.txt containing exactly this line: over budget" \
  --timeout 900 -q >/dev/null
wait_guest_screen '(budget|max-tokens|token limit)' 900
expect_eq "the model saw one request past the budget's start" 1 "$(model_requests '.tools' | wc -l)"
agent-stop "$id" >/dev/null
expect_eq "no gateway process left" "$gw_before" "$(gateways)"
