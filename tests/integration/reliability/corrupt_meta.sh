#!/usr/bin/env bash
# Sessions whose meta.json is corrupt or from another schema list as
# `corrupt` with the reason; every command on the other sessions still
# works; the broken ones refuse clearly and can be removed, even one whose
# VM is still running.
source "$AGENT_VM_SOURCE/tests/integration/reliability/rlib.sh"

setup_repo
A=$(agent-spawn --repo "$REPO_URL" --agent-cmd "$STAND_IN" --memory 384M --no-wait -q)
wait_guest "$A" 300

# Broken sessions beside A, each with a different fault in meta.json.
broken() {  # broken <id> <how>: a session folder whose meta.json is broken that way
  local d="$AGENT_VM_SESSIONS/$1"
  mkdir -p -m 0700 "$d/repo" "$d/ssh" "$d/run"
  jq --arg id "$1" '.id = $id | del(.qemu)' "$(meta_of "$A")" >"$d/meta.json"
  case $2 in
    garbage) printf '{"schema":1,"id":"%s", tru' "$1" >"$d/meta.json" ;;
    schema) jq '.schema = 99' "$d/meta.json" >"$d/m" && mv "$d/m" "$d/meta.json" ;;
    missing) rm "$d/meta.json" ;;
    other-id) jq '.id = "zzzzzz"' "$d/meta.json" >"$d/m" && mv "$d/m" "$d/meta.json" ;;
    wrong-type) jq '.ssh_port = "22"' "$d/meta.json" >"$d/m" && mv "$d/m" "$d/meta.json" ;;
    empty) : >"$d/meta.json" ;;
    binary) head -c 4096 /dev/urandom >"$d/meta.json" ;;
    symlink) rm "$d/meta.json"; ln -s "$TEST_TMP/outside.json" "$d/meta.json" ;;
  esac
  fault "meta.json $2"
}
echo '{"secret-outside-the-session": "do-not-show-this"}' >"$TEST_TMP/outside.json"
broken b00001 garbage
broken b00002 schema
broken b00003 missing
broken b00004 other-id
broken b00005 wrong-type
broken b00006 empty
broken b00007 binary
broken b00008 symlink

log "list"
out=$(agent-vm list --json)
st() { jq -r --arg id "$1" '.[] | select(.id==$id) | .status' <<<"$out"; }
why() { jq -r --arg id "$1" '.[] | select(.id==$id) | .detail' <<<"$out"; }
expect_eq "A lists as QEMU says" running "$(st "$A")"
for b in b00001 b00002 b00003 b00004 b00005 b00006 b00007 b00008; do
  expect_eq "$b lists corrupt" corrupt "$(st "$b")"
  [ -n "$(why "$b")" ] || fail "$b: no reason given"
done
expect_match "garbage: says it is not JSON" "JSON|json|parse|syntax" "$(why b00001)"
expect_match "schema: names the schema" "schema.*99|99.*schema" "$(why b00002)"
expect_match "missing: says so" "missing|no such file|cannot read" "$(why b00003)"
expect_match "other id: names it" "zzzzzz" "$(why b00004)"
expect_match "wrong type: names the field" "ssh_port" "$(why b00005)"
[[ "$out" != *do-not-show-this* ]] || fail "the list shows what a symlinked meta.json points at"
table=$(agent-list)
expect_match "the table shows the reason" "b00002: .*schema" "$table"

log "every command on the good session still works"
expect_eq "exec" "README" "$(agent-exec "$A" -- ls)"
agent-vm logs "$A" -n 5 >/dev/null || fail "logs of A failed"
expect_eq "stop" guest-poweroff "$(agent-stop "$A" --json | jq -r '.[0].method')"
agent-resume "$A" --no-wait -q >/dev/null || fail "resume of A failed"
expect_eq "running again" running "$(list_field "$A" .status)"

log "the broken sessions refuse clearly"
for b in b00001 b00002 b00005; do
  expect_refused "stop $b" "$b|meta.json" agent-stop "$b"
  expect_refused "resume $b" "$b|meta.json" agent-resume "$b" --no-wait
  expect_refused "exec $b" "$b|meta.json" agent-exec "$b" -- true
  expect_refused "attach $b" "$b|meta.json" agent-attach "$b"
done

log "broken sessions can be removed, the running one's VM too"
for b in b00001 b00002 b00003 b00004 b00005 b00006 b00007; do agent-rm "$b" >/dev/null; done
agent-rm b00008 >/dev/null
[ -f "$TEST_TMP/outside.json" ] || fail "removing a session removed what its meta.json linked to"
pid=$(qemu_pid_of "$A")
printf 'not json at all' >"$(meta_of "$A")"
fault "meta.json of a running session destroyed"
expect_eq "A now lists corrupt" corrupt "$(list_field "$A" .status)"
expect_refused "rm without --force of a running corrupt session" "is running.*--force" agent-rm "$A"
agent-rm --force "$A" >/dev/null
wait_gone "$pid" 30
expect_no_qemu "$A"
expect_eq "nothing left" "[]" "$(agent-vm list --json | jq -c .)"
