# The scripted model server (tests/model_server/model_server.py) for the agent
# tests: started on a free port of 127.0.0.1, stopped with the test.
MODEL_SERVER="$AGENT_VM_SOURCE/tests/model_server/model_server.py"

# start_model_server <script.json>: sets MODEL_PORT, MODEL_LOG, MODEL_SCRIPT
# (a copy the test may rewrite to change the mode between requests) and
# MODEL_URL (what ANTHROPIC_BASE_URL takes).
start_model_server() {
  MODEL_SCRIPT="$TEST_TMP/model-script.json"
  MODEL_LOG="$TEST_TMP/model-requests.jsonl"
  cp "$1" "$MODEL_SCRIPT"
  /usr/bin/python3 "$MODEL_SERVER" --script "$MODEL_SCRIPT" --log "$MODEL_LOG" \
    --port-file "$TEST_TMP/model.port" 2>"$TEST_TMP/model-server.err" &
  _bg_pids+=($!)
  local deadline=$((SECONDS + 20))
  until [ -s "$TEST_TMP/model.port" ]; do
    [ $SECONDS -lt $deadline ] || fail "the model server did not start: $(cat "$TEST_TMP/model-server.err")"
    sleep 0.05
  done
  MODEL_PORT=$(cat "$TEST_TMP/model.port")
  MODEL_URL="http://127.0.0.1:$MODEL_PORT/v1"
  log "model server on 127.0.0.1:$MODEL_PORT"
}

# set_model_mode <jq expression applied to the script>, e.g.
#   set_model_mode '.mode="error" | .error={status:500,type:"api_error",message:"x"}'
set_model_mode() {
  jq "$1" "$MODEL_SCRIPT" >"$MODEL_SCRIPT.new" && mv "$MODEL_SCRIPT.new" "$MODEL_SCRIPT"
}

# model_requests <jq filter>: the recorded requests matching the filter, one JSON per line.
model_requests() { jq -c "select($1)" "$MODEL_LOG"; }

# wait_request <jq filter> <seconds>: until a recorded request matches.
wait_request() {
  local deadline=$((SECONDS + $2))
  until [ -n "$(model_requests "$1")" ]; do
    [ $SECONDS -lt $deadline ] || fail "no request matching $1 within $2s"
    sleep 0.5
  done
}

# wait_file <path> <content> <seconds>: until the file holds exactly the content.
wait_file() {
  local deadline=$((SECONDS + $3))
  until [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; do
    [ $SECONDS -lt $deadline ] || fail "$1 never held '$2' (holds: $(cat "$1" 2>/dev/null || echo nothing))"
    sleep 0.5
  done
}
