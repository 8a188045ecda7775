#!/usr/bin/env bash
# What a guest can reach in each network mode, on real guests:
#   restricted (default): only the allowed hosts, through the egress proxy;
#     never a service on the host's loopback, not even when the allowlist
#     names it; nothing directly.
#   full: QEMU's user networking; the same host-loopback service IS reached
#     (through 10.0.2.2), which proves the restricted checks can fail.
#   none: no network device at all.
# Nothing leaves this machine. The allowed target is an HTTPS server (with a
# certificate from a CA made here) at an address of this machine's own that
# the proxy does not refuse: inside a network namespace made by the test, at
# the end of a veth pair numbered from 198.18.0.0/15 (the benchmarking
# range). Its names resolve through a hosts file that only the spawned
# sessions see (agent-spawn runs under `unshare -m` with /etc/hosts bound
# over; QEMU and its egress helper inherit that). The loopback service is a
# web server on 127.0.0.1 holding a token. The restricted session is cloned
# over https with a token in the URL (which must be written nowhere). Needs
# root (ip netns, unshare -m).
source "$AGENT_VM_SOURCE/tests/integration/reliability/rlib.sh"

[ "$(id -u)" = 0 ] || fail "network.sh needs root: it makes a network namespace (ip netns) and binds a private /etc/hosts (unshare -m)"

NS="avm-net-$$"
VH="avmh$$"  # the host's end of the veth pair (names fit IFNAMSIZ)
VN="avmn$$"  # the namespace's end
TLS_PID=
_net_exit() {
  local rc=$?
  set +e
  if [ -n "$TLS_PID" ]; then kill "$TLS_PID" 2>/dev/null; wait "$TLS_PID" 2>/dev/null; fi
  ip netns del "$NS" 2>/dev/null  # takes the veth pair with it
  ip link del "$VH" 2>/dev/null
  (exit $rc)
  _r_exit
}
trap _net_exit EXIT

# A /30 of 198.18.0.0/15 per test process.
base=$(( ($$ % 32768) * 4 ))
NET="198.$((18 + base / 65536)).$(( (base / 256) % 256 ))"
HOST_IP="$NET.$(( base % 256 + 1 ))"
NS_IP="$NET.$(( base % 256 + 2 ))"
NAME=pkg.agent-vm.test    # allowed
OTHER=other.agent-vm.test # same server, not on the list

log "a TLS server at $NS_IP ($NAME) in network namespace $NS"
ip netns add "$NS"
ip link add "$VH" type veth peer name "$VN"
ip link set "$VN" netns "$NS"
ip addr add "$HOST_IP/30" dev "$VH"
ip link set "$VH" up
ip -n "$NS" addr add "$NS_IP/30" dev "$VN"
ip -n "$NS" link set "$VN" up
ip -n "$NS" link set lo up
"$AGENT_VM_SOURCE/tests/integration/make_cert.sh" "$TEST_TMP/tls" pkg "DNS:$NAME,DNS:$OTHER"
CA="$TEST_TMP/tls/ca.pem"
PAGE="tls-page-$RANDOM$RANDOM"
mkdir -p "$TEST_TMP/site"
echo "$PAGE" >"$TEST_TMP/site/page"
ip netns exec "$NS" /usr/bin/python3 "$AGENT_VM_SOURCE/tests/integration/tls_server.py" \
  --cert "$TEST_TMP/tls/pkg.pem" --key "$TEST_TMP/tls/pkg.key" --bind "$NS_IP" --port 443 \
  --static "$TEST_TMP/site" >"$TEST_TMP/tls.log" 2>&1 &
TLS_PID=$!
wait_file_match "$TEST_TMP/tls.log" "listening on https://$NS_IP:443" 30
expect_eq "the host reaches $NAME at $NS_IP, verified by the test CA" "$PAGE" \
  "$(curl -sS -m 20 --cacert "$CA" --resolve "$NAME:443:$NS_IP" "https://$NAME/page")"
{ cat /etc/hosts; echo "$NS_IP $NAME $OTHER"; } >"$TEST_TMP/hosts"
# with_hosts <command...>: runs the command where /etc/hosts names the server.
with_hosts() {
  unshare -m sh -c 'mount --bind "$1" /etc/hosts && shift && exec "$@"' sh "$TEST_TMP/hosts" "$@"
}
getent_out=$(with_hosts getent hosts "$NAME" || true)
expect_match "$NAME resolves under with_hosts" "^$NS_IP " "$getent_out"
[ -z "$(getent hosts "$NAME" || true)" ] || fail "$NAME resolves outside the test's mount namespace"

setup_repo
# The restricted session's repository comes over https (the test CA, a
# token in the URL that the server checks), end to end through agent-spawn.
"$AGENT_VM_SOURCE/tests/integration/make_cert.sh" "$TEST_TMP/tls" local "IP:127.0.0.1,DNS:127.0.0.1"
GIT_TOKEN="git-token-$RANDOM$RANDOM"
/usr/bin/python3 "$AGENT_VM_SOURCE/tests/integration/tls_server.py" --cert "$TEST_TMP/tls/local.pem" \
  --key "$TEST_TMP/tls/local.key" --git-root "$TEST_TMP/git" --auth "alice:$GIT_TOKEN" >"$TEST_TMP/git-https.log" 2>&1 &
_bg_pids+=($!)
wait_file_match "$TEST_TMP/git-https.log" "listening on https://127.0.0.1:[0-9]+" 30
GPORT=$(sed -n 's|^listening on https://127.0.0.1:\([0-9]*\)$|\1|p' "$TEST_TMP/git-https.log")
HTTPS_URL="https://alice:$GIT_TOKEN@127.0.0.1:$GPORT/project.git"
expect_refused "an https repository whose CA is not trusted" "certificate.*127.0.0.1:$GPORT" \
  env -u SSL_CERT_FILE -u SSL_CERT_DIR agent-spawn --repo "$HTTPS_URL" --agent-cmd "$STAND_IN" --no-wait -q
expect_eq "the refused spawn left no session" "" "$(ls "$AGENT_VM_SESSIONS" 2>/dev/null | grep -v '^\.' || true)"
WEB=$(free_port)
TOKEN="host-loopback-token-$RANDOM$RANDOM"
mkdir -p "$TEST_TMP/www"
echo "$TOKEN" >"$TEST_TMP/www/token"
python3 -m http.server --bind 127.0.0.1 --directory "$TEST_TMP/www" "$WEB" >"$TEST_TMP/www.log" 2>&1 &
_bg_pids+=($!)
wait_port "$WEB" 20
expect_eq "the host itself reads the token" "$TOKEN" "$(curl -sS "http://127.0.0.1:$WEB/token")"

log "spawn restricted, full and none side by side"
SSL_CERT_FILE="$CA" with_hosts agent-spawn --repo "$HTTPS_URL" --agent-cmd "$STAND_IN" --memory 384M --no-wait -q \
  --allow-host "$NAME" --allow-host "localhost:$WEB" --allow-host "127.0.0.1:$WEB" >"$TEST_TMP/r.id" 2>"$TEST_TMP/r.err" &
p1=$!
agent-spawn --repo "$REPO_URL" --agent-cmd "$STAND_IN" --memory 384M --no-wait -q --net full >"$TEST_TMP/f.id" &
p2=$!
agent-spawn --repo "$REPO_URL" --agent-cmd "$STAND_IN" --memory 384M --no-wait -q --net none >"$TEST_TMP/n.id" &
p3=$!
wait $p1 || { cat "$TEST_TMP/r.err" >&2; fail "spawn --net restricted failed"; }
wait $p2 || fail "spawn --net full failed"
wait $p3 || fail "spawn --net none failed"
R=$(cat "$TEST_TMP/r.id"); F=$(cat "$TEST_TMP/f.id"); N=$(cat "$TEST_TMP/n.id")
expect_eq "modes recorded" "restricted full none" \
  "$(for i in $R $F $N; do list_field "$i" .net; done | tr '\n' ' ' | sed 's/ $//')"
expect_eq "the https clone is recorded without its token" "https://alice@127.0.0.1:$GPORT/project.git" \
  "$(list_field "$R" .repo)"
expect_match "the token reached the git server" "auth ok user=alice" "$(cat "$TEST_TMP/git-https.log")"
[ -f "$AGENT_VM_SESSIONS/$R/repo/README" ] || fail "the https clone has no README"
wait_guest "$R" 300
expect_eq "files holding the token (session folder, spawn's output)" "" \
  "$(grep -rlF -D skip "$GIT_TOKEN" "$AGENT_VM_SESSIONS/$R" "$TEST_TMP/r.err" "$TEST_TMP/r.id" 2>/dev/null || true)"
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
# The test CA goes in through agent-exec's stdin: curl verifies the server.
# fetch_page <id> <curl args...>: the page, fetched in the guest.
fetch_page() {
  local id=$1
  shift
  agent-exec -i "$id" -- sh -c 'cat >/tmp/test-ca.pem; curl -sS -m 60 --cacert /tmp/test-ca.pem "$@"' sh "$@" \
    <"$CA" 2>"$TEST_TMP/fetch.err" || { cat "$TEST_TMP/fetch.err" >&2; true; }
}
# verdict_of <id> <host:port>: the egress audit's verdict (and reason) for
# it. The line is written when the connection ends, which can be a moment
# after curl returned: wait for it, at most 30 s.
verdict_of() {
  local v deadline=$((SECONDS + 30))
  until v=$(agent-logs --net --json "$1" | jq -r --arg t "$2" 'select(.source=="egress" and .target==$t) | "\(.verdict): \(.reason)"' | head -1)
        [ -n "$v" ] || [ $SECONDS -ge $deadline ]; do sleep 0.1; done
  echo "$v"
}
expect_eq "https://$NAME/page through the proxy" "$PAGE" "$(fetch_page "$R" "https://$NAME/page")"
expect_match "the egress log records it" "^allowed: on the allowlist" "$(verdict_of "$R" "$NAME:443")"
expect_eq "... with the address connected to" "$NS_IP:443" \
  "$(agent-logs --net --json "$R" | jq -r --arg t "$NAME:443" 'select(.source=="egress" and .target==$t) | .address' | head -1)"
expect_eq "the server answered the host's request and the proxied one" 2 "$(grep -c '"GET /page' "$TEST_TMP/tls.log")"

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
expect_eq "a host not on the list ($OTHER, the same server)" 403 \
  "$(gexec "$R" -- curl -sS -m 10 -p -o /dev/null -w '%{http_connect}' "https://$OTHER/page")"
expect_match "the egress log records the refusal" "^denied: not on the allowlist" "$(verdict_of "$R" "$OTHER:443")"
expect_eq "plain HTTP is not proxied" 405 "$(http_code "$R" "http://$NAME/page")"
expect_eq "nothing direct, not even to the server's address" 000 \
  "$(http_code "$R" -k --noproxy '*' --resolve "$NAME:443:$NS_IP" "https://$NAME/page")"
expect_eq "the server saw no other request" 2 "$(grep -c '"GET /page' "$TEST_TMP/tls.log")"
expect_eq "the loopback server saw only the host's own request" 1 "$(grep -c '"GET /token' "$TEST_TMP/www.log")"

log "full: the same service IS reached (10.0.2.2 is the host's loopback)"
expect_eq "full guest reads the host's loopback token" "$TOKEN" \
  "$(gexec "$F" -- curl -sS -m 20 --noproxy '*' "http://10.0.2.2:$WEB/token")"
expect_eq "no proxy in the full guest's environment" "" "$(gexec "$F" -- sh -c 'echo $HTTPS_PROXY')"
expect_eq "full guest reaches $NAME directly (at $NS_IP)" "$PAGE" \
  "$(fetch_page "$F" --noproxy '*' --resolve "$NAME:443:$NS_IP" "https://$NAME/page")"

log "none: no network device at all"
expect_eq "only loopback in the none guest" "lo" "$(gexec "$N" --root -- ls /sys/class/net)"
expect_eq "none guest reaches nothing" 000 "$(http_code "$N" --noproxy '*' "http://10.0.2.2:$WEB/token")"

agent-rm --force "$R" "$F" "$N" >/dev/null
for i in $R $F $N; do expect_no_qemu "$i"; done
