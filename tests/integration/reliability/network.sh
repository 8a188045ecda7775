#!/usr/bin/env bash
# What a guest can reach in each network mode, on real guests:
#   restricted (default): only the allowed hosts, through the egress proxy;
#     never a service on the host's loopback, not even when the allowlist
#     names it; nothing directly.
#   full: QEMU's user networking; the same host-loopback service IS reached
#     (through 10.0.2.2), which proves the restricted checks can fail.
#   none: no network device at all.
# The allowed target is registry.npmjs.org:443, the one outside host this
# machine reaches; the loopback service is a web server on 127.0.0.1 holding
# a token.
source "$AGENT_VM_SOURCE/tests/integration/reliability/rlib.sh"

setup_repo
WEB=$(free_port)
TOKEN="host-loopback-token-$RANDOM$RANDOM"
mkdir -p "$TEST_TMP/www"
echo "$TOKEN" >"$TEST_TMP/www/token"
python3 -m http.server --bind 127.0.0.1 --directory "$TEST_TMP/www" "$WEB" >"$TEST_TMP/www.log" 2>&1 &
_bg_pids+=($!)
wait_port "$WEB" 20
expect_eq "the host itself reads the token" "$TOKEN" "$(curl -sS "http://127.0.0.1:$WEB/token")"

log "spawn restricted, full and none side by side"
agent-spawn --repo "$REPO_URL" --agent-cmd "$STAND_IN" --memory 384M --no-wait -q \
  --allow-host registry.npmjs.org --allow-host "localhost:$WEB" --allow-host "127.0.0.1:$WEB" >"$TEST_TMP/r.id" &
p1=$!
agent-spawn --repo "$REPO_URL" --agent-cmd "$STAND_IN" --memory 384M --no-wait -q --net full >"$TEST_TMP/f.id" &
p2=$!
agent-spawn --repo "$REPO_URL" --agent-cmd "$STAND_IN" --memory 384M --no-wait -q --net none >"$TEST_TMP/n.id" &
p3=$!
wait $p1 || fail "spawn --net restricted failed"
wait $p2 || fail "spawn --net full failed"
wait $p3 || fail "spawn --net none failed"
R=$(cat "$TEST_TMP/r.id"); F=$(cat "$TEST_TMP/f.id"); N=$(cat "$TEST_TMP/n.id")
expect_eq "modes recorded" "restricted full none" \
  "$(for i in $R $F $N; do list_field "$i" .net; done | tr '\n' ' ' | sed 's/ $//')"
wait_guest "$R" 300
wait_guest "$F" 300
wait_guest "$N" 300

# gexec <id> <command...>: stdout of a command run as the agent; never fails.
gexec() { agent-exec "$@" 2>/dev/null || true; }
# http_code <id> <curl args...>: curl's HTTP code (000 when nothing answered).
http_code() {
  local id=$1
  shift
  gexec "$id" -- curl -sS -m 30 -o /dev/null -w '%{http_code}' "$@"
}

log "restricted: the allowed host is reached, through the proxy"
expect_eq "proxy in the agent's environment" "http://10.0.2.100:3128" "$(gexec "$R" -- sh -c 'echo $HTTPS_PROXY')"
# The host's CA bundle goes in: the guest trusts what this host trusts (a
# TLS-inspecting gateway included).
code=$(agent-exec -i "$R" -- sh -c 'cat >/tmp/ca.pem; curl -sS -m 60 --cacert /tmp/ca.pem -o /dev/null -w "%{http_code}" https://registry.npmjs.org/' \
         </etc/ssl/certs/ca-certificates.crt 2>"$TEST_TMP/allowed.err" || true)
[ "$code" = 200 ] || { cat "$TEST_TMP/allowed.err" >&2; fail "allowed host: HTTP '$code', expected 200"; }
log "ok: https://registry.npmjs.org/ answered 200 through the proxy"
# verdict_of <id> <host:port>: the egress audit's verdict (and reason) for
# it. The line is written when the connection ends, which can be a moment
# after curl returned: wait for it, at most 30 s.
verdict_of() {
  local v deadline=$((SECONDS + 30))
  until v=$(agent-logs --net --json "$1" | jq -r --arg t "$2" 'select(.source=="egress" and .target==$t) | "\(.verdict): \(.reason)"' | head -1)
        [ -n "$v" ] || [ $SECONDS -ge $deadline ]; do sleep 0.1; done
  echo "$v"
}
expect_match "the egress log records it" "^allowed: on the allowlist" "$(verdict_of "$R" registry.npmjs.org:443)"
expect_match "... with the address connected to and the bytes" '^[^ ]+:443 [1-9][0-9]* [1-9][0-9]*$' \
  "$(agent-logs --net --json "$R" | jq -r 'select(.source=="egress" and .target=="registry.npmjs.org:443") | "\(.address) \(.bytes_up) \(.bytes_down)"' | head -1)"

log "restricted: the host's loopback service is out of reach"
out=$(gexec "$R" -- curl -sS -m 10 --noproxy '*' "http://10.0.2.2:$WEB/token")
[[ "$out" != *"$TOKEN"* ]] || fail "restricted guest read the host's loopback server directly"
expect_eq "direct to 10.0.2.2:$WEB" 000 "$(http_code "$R" --noproxy '*' "http://10.0.2.2:$WEB/token")"
for target in "10.0.2.2:$WEB" "127.0.0.1:$WEB" "localhost:$WEB"; do
  # CONNECT through the proxy, even to names the allowlist carries.
  out=$(gexec "$R" -- curl -sS -m 10 --noproxy '' --proxy http://10.0.2.100:3128 -p "http://$target/token")
  [[ "$out" != *"$TOKEN"* ]] || fail "restricted guest read the host's loopback server via the proxy ($target)"
  expect_eq "CONNECT $target refused" 403 \
    "$(gexec "$R" -- curl -sS -m 10 --noproxy '' --proxy http://10.0.2.100:3128 -p -o /dev/null -w '%{http_connect}' "http://$target/token")"
done
expect_eq "allowlisted loopback names are refused for what they resolve to" \
  "denied: resolves only to local addresses" "$(verdict_of "$R" "localhost:$WEB")"
expect_eq "a host not on the list" 403 \
  "$(gexec "$R" -- curl -sS -m 10 -p -o /dev/null -w '%{http_connect}' https://deb.debian.org/)"
expect_eq "plain HTTP is not proxied" 405 "$(http_code "$R" "http://registry.npmjs.org/")"
expect_eq "nothing direct to the outside" 000 "$(http_code "$R" --noproxy '*' https://registry.npmjs.org/)"
expect_eq "the loopback server saw only the host's own request" 1 "$(grep -c '"GET /token' "$TEST_TMP/www.log")"

log "full: the same service IS reached (10.0.2.2 is the host's loopback)"
expect_eq "full guest reads the host's loopback token" "$TOKEN" \
  "$(gexec "$F" -- curl -sS -m 20 --noproxy '*' "http://10.0.2.2:$WEB/token")"
expect_eq "no proxy in the full guest's environment" "" "$(gexec "$F" -- sh -c 'echo $HTTPS_PROXY')"

log "none: no network device at all"
expect_eq "only loopback in the none guest" "lo" "$(gexec "$N" --root -- ls /sys/class/net)"
expect_eq "none guest reaches nothing" 000 "$(http_code "$N" --noproxy '*' "http://10.0.2.2:$WEB/token")"

agent-rm --force "$R" "$F" "$N" >/dev/null
for i in $R $F $N; do expect_no_qemu "$i"; done
