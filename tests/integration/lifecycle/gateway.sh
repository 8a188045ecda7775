#!/usr/bin/env bash
# The model gateway on real guests, under --net restricted and --net full: a
# scripted model API on the host's 127.0.0.1 stands in for the upstream.
#   from inside the guest, http://10.0.2.100/v1/messages reaches the upstream
#     with the real key put in and the guest's placeholder dropped;
#   inside the guest (as root) no file, process environment or command line,
#     nor the kernel's, holds the key; on the host only .host/<id>/api-key;
#   agent-list --json shows the tokens, agent-logs --net --json the request;
#   --max-tokens refuses requests past the budget, resume --max-tokens raises it;
#   resume --prompt writes followup.txt, a resume without it removes it;
#   a plain http:// upstream off loopback is refused before anything is made.
source "$AGENT_VM_SOURCE/tests/integration/lib.sh"

make_repo "$TEST_TMP/git/project.git"
serve_git "$TEST_TMP/git"
SECRET="sk-ant-gw-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf '%s' "$SECRET" >"$TEST_TMP/secret.pat"   # patterns go through files, never argv

# The scripted model API: each request's path and headers go to a JSON line;
# every answer is one streamed message of 30 input and 12 output tokens.
cat >"$TEST_TMP/upstream.py" <<'EOF'
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
log = open(sys.argv[2], "a")
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        log.write(json.dumps({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                              "model": json.loads(body or b"{}").get("model")}) + "\n")
        log.flush()
        events = [("message_start", {"type": "message_start", "message": {"id": "m", "usage": {"input_tokens": 30, "output_tokens": 1}}}),
                  ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}}),
                  ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 12}}),
                  ("message_stop", {"type": "message_stop"})]
        data = "".join("event: %s\ndata: %s\n\n" % (e, json.dumps(d)) for e, d in events).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *a):
        pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF
UP=$(free_port)
python3 "$TEST_TMP/upstream.py" "$UP" "$TEST_TMP/upstream.log" >"$TEST_TMP/upstream.err" 2>&1 &
_bg_pids+=($!)
wait_port "$UP" 20

# ask <id>: one streamed model request from inside the guest, as the agent
# (its environment: the gateway's URL and the placeholder key); prints the
# HTTP status, then the body.
ask() {
  agent-exec "$1" -- sh -c 'curl -sS -m 120 -w "\n%{http_code}" -H "x-api-key: $ANTHROPIC_API_KEY" \
    -H "content-type: application/json" -H "anthropic-version: 2023-06-01" \
    -d "{\"model\":\"claude-gw-test\",\"stream\":true,\"max_tokens\":10}" "$ANTHROPIC_BASE_URL/messages"' 2>&1 || true
}
status_of() { tail -n1 <<<"$1"; }

log "an upstream that would carry the key in the clear is refused at spawn"
set +e
err=$(ANTHROPIC_API_KEY="$SECRET" ANTHROPIC_BASE_URL="http://model.example.com/v1" \
        agent-spawn --repo "git://127.0.0.1:$GIT_PORT/project.git" --agent-cmd "$STAND_IN" -q 2>&1 >/dev/null)
rc=$?
set -e
[ $rc -ne 0 ] || fail "spawn with a plain http:// upstream off loopback succeeded"
expect_match "the refusal names the fix" "https://" "$err"
expect_eq "nothing was made" "" "$(ls -A "$AGENT_VM_SESSIONS" 2>/dev/null | grep -v '^\.locks$' || true)"

for net in restricted full; do
  log "spawn --net $net with the key and a loopback upstream"
  : >"$TEST_TMP/upstream.log"
  id=$(ANTHROPIC_API_KEY="$SECRET" ANTHROPIC_BASE_URL="http://127.0.0.1:$UP/v1" \
         agent-spawn --repo "git://127.0.0.1:$GIT_PORT/project.git" --agent-cmd "$STAND_IN" --memory 512M \
         --net "$net" --max-tokens 60 -q 2>"$TEST_TMP/spawn.err") || { cat "$TEST_TMP/spawn.err" >&2; fail "spawn"; }
  h="$AGENT_VM_SESSIONS/.host/$id"
  expect_eq "$net: the agent's base URL" "http://10.0.2.100/v1" "$(agent-exec "$id" -- sh -c 'echo $ANTHROPIC_BASE_URL')"

  out=$(ask "$id")
  expect_eq "$net: the guest's request answered" 200 "$(status_of "$out")"
  expect_match "$net: the answer streamed through" "event: message_stop" "$out"
  expect_eq "$net: the upstream got the real key" "$SECRET" "$(jq -r '.headers["x-api-key"]' "$TEST_TMP/upstream.log" | head -1)"
  expect_eq "$net: ... and nothing of the guest's" "0" "$(grep -c 'agent-vm-gateway-holds' "$TEST_TMP/upstream.log" || true)"
  expect_eq "$net: the path" "/v1/messages" "$(jq -r .path "$TEST_TMP/upstream.log" | head -1)"
  expect_eq "$net: agent-list's tokens" "30 12 60" \
    "$(list_field "$id" '"\(.input_tokens) \(.output_tokens) \(.max_tokens)"')"
  entry=$(agent-logs --net --json "$id" | jq -c 'select(.source=="gateway")' | head -1)
  expect_eq "$net: agent-logs --net --json shows the request" "POST /v1/messages claude-gw-test 200 30 12" \
    "$(jq -r '"\(.method) \(.path) \(.model) \(.status) \(.input_tokens) \(.output_tokens)"' <<<"$entry")"

  log "$net: the key is nowhere in the guest"
  found=$(secret_in_guest "$id" "$TEST_TMP/secret.pat")
  expect_eq "$net: files, process environments and command lines holding the key" "" "$found"
  expect_eq "$net: on the host only in the host-only folder" "$h/api-key" \
    "$(grep -rlF -f "$TEST_TMP/secret.pat" "$AGENT_VM_HOME" --exclude-dir=repo 2>/dev/null | sort -u || true)"
  expect_eq "$net: api-key mode" 600 "$(stat -c %a "$h/api-key")"

  log "$net: the budget"
  expect_eq "$net: a request under the budget" 200 "$(status_of "$(ask "$id")")"
  out=$(ask "$id")
  expect_eq "$net: a request past the budget is refused" 400 "$(status_of "$out")"
  expect_match "$net: ... naming the fix" "agent-resume $id --max-tokens N" "$out"
  expect_eq "$net: the refused request never left the host" 2 "$(wc -l <"$TEST_TMP/upstream.log")"

  if [ "$net" = restricted ]; then
    log "resume --max-tokens raises the budget"
    agent-stop "$id" >/dev/null
    agent-resume "$id" --max-tokens 1000 --prompt "now the next step" -q >/dev/null
    expect_eq "after resume --max-tokens 1000" 200 "$(status_of "$(ask "$id")")"
    expect_eq "agent-list's budget" "1000" "$(list_field "$id" .max_tokens)"
    expect_eq "resume --prompt wrote followup.txt" "now the next step" "$(cat "$AGENT_VM_SESSIONS/$id/followup.txt")"
    expect_eq "followup.txt mode" 600 "$(stat -c %a "$AGENT_VM_SESSIONS/$id/followup.txt")"
    agent-stop "$id" >/dev/null
    agent-resume "$id" --no-wait -q >/dev/null
    [ ! -e "$AGENT_VM_SESSIONS/$id/followup.txt" ] || fail "a resume without --prompt kept the old followup.txt"
    log "ok: a resume without --prompt removed followup.txt"
  fi
  agent-rm --force "$id" >/dev/null
  [ ! -e "$h" ] || fail "agent-rm left the host-only folder $h"
done
