#!/usr/bin/env bash
# The agent's work comes back safely. A stand-in agent, in a real guest,
# commits a change, leaves one uncommitted, adds an untracked file, and
# plants every trap that would make git on the host run a program: config
# keys, hooks, .gitattributes filters, .gitmodules, .envrc, a workflow, an
# editor task file, a file made executable. Each trap's command creates a
# marker under $TRAPS, a path that means the same on both sides (it does not
# exist in the guest). Then:
#   list marks the running session -> diff (running) names every trap
#   -> stop defuses the repo and says what it removed -> diff lists exactly
#   the agent's changes -> export writes agent/ID into the source repository,
#   leaving its HEAD, index and working tree byte for byte -> a second
#   export is refused, --force replaces -> push refuses a local working
#   repository (export is the way) and reaches a git daemon origin
#   -> plain git status/log/diff in the session repo runs nothing
# and no marker ever appears.
source "$AGENT_VM_SOURCE/tests/integration/lib.sh"

TRAPS="$TEST_TMP/traps"
mkdir -p "$TRAPS"
src="$TEST_TMP/src"
gitc() { git -c user.name=t -c user.email=t@t "$@"; }

no_markers() {
  local found
  found=$(ls -A "$TRAPS")
  [ -z "$found" ] || fail "$1: planted commands ran on the host: $found"
  log "ok: no trap ran ($1)"
}

log "the source repository"
git init -q -b main "$src"
echo one >"$src/README"
echo "to be deleted" >"$src/gone.txt"
echo "echo hi" >"$src/script.sh"
echo "*.log" >"$src/.gitignore"
mkdir -p "$src/tools"
cat >"$src/tools/plant.sh" <<EOF
#!/bin/sh
# Runs in the guest as the agent, in /session/repo.
set -e
cd /session/repo
g() { git -c user.name=agent -c user.email=agent@guest "\$@"; }
echo two >>README
g commit -q -am "agent: second line"
echo three >>README
echo untracked >new.txt
echo ignored >debug.log
rm gone.txt
chmod +x script.sh
mkdir -p .github/workflows .vscode
echo "on: push" >.github/workflows/ci.yml
echo '{"tasks": [{"command": "touch $TRAPS/vscode"}]}' >.vscode/tasks.json
echo "touch $TRAPS/envrc" >.envrc
echo "* filter=evil diff=evil merge=evil" >.gitattributes
printf '[submodule "x"]\n\tpath = x\n\turl = ../x\n\tupdate = !touch $TRAPS/submodule\n' >.gitmodules
printf '[core]\n\teditor = touch $TRAPS/included-editor #\n' >inc.cfg
# The traps in .git, last: from here on git in the guest would run them too.
set_key() { git config "\$1" "touch $TRAPS/\$2 #"; }
set_key core.fsmonitor fsmonitor
set_key core.pager pager
set_key core.editor editor
set_key core.sshCommand sshcommand
set_key core.askPass askpass
set_key filter.evil.clean clean
set_key filter.evil.smudge smudge
set_key filter.evil.process process
set_key diff.evil.textconv textconv
set_key diff.external diff-external
set_key merge.evil.driver merge-driver
set_key credential.helper credential
set_key gpg.program gpg
set_key sequence.editor sequence-editor
set_key pager.log pager-log
set_key pager.status pager-status
set_key uploadpack.packObjectsHook packobjectshook
set_key remote.origin.uploadpack uploadpack
git config alias.st "!touch $TRAPS/alias #"
git config core.hooksPath /session/repo/.git/hooks2
git config include.path ../inc.cfg
mkdir -p .git/hooks2
for h in post-checkout pre-commit post-commit post-index-change reference-transaction pre-auto-gc post-merge; do
  printf '#!/bin/sh\ntouch $TRAPS/hook-%s\n' "\$h" >".git/hooks/\$h"
  cp ".git/hooks/\$h" ".git/hooks2/\$h"
  chmod +x ".git/hooks/\$h" ".git/hooks2/\$h"
done
touch .git/planted
EOF
gitc -C "$src" add -A
gitc -C "$src" commit -q -m "base"
base=$(git -C "$src" rev-parse HEAD)
# The user's own uncommitted state, which export must leave alone.
echo "user's work" >>"$src/README"
gitc -C "$src" add README
echo "user's unstaged work" >>"$src/script.sh"

# Everything in the source repository but its objects and the refs export
# and push add: names, modes, link targets and bytes.
fingerprint() {
  local skip=(\( -path ./.git/objects -o -path ./.git/refs/heads/agent -o -path ./.git/logs/refs/heads/agent
              -o -path ./.git/refs/heads/pushed -o -path ./.git/logs/refs/heads/pushed \) -prune -o)
  (cd "$src" && find . "${skip[@]}" -printf '%p %M %l\n' | sort &&
     find . "${skip[@]}" -type f -print0 | sort -z | xargs -0 sha256sum)
}

log "spawn"
out=$(agent-spawn --repo "file://$src" --agent-cmd "sh /session/repo/tools/plant.sh; exec sleep 100000" \
        --memory 512M --json)
id=$(json .id "$out")
sess="$AGENT_VM_SESSIONS/$id"
deadline=$((SECONDS + 300))
until [ -e "$sess/repo/.git/planted" ]; do
  [ $SECONDS -lt $deadline ] || fail "the stand-in agent never finished planting (no $sess/repo/.git/planted)"
  sleep 0.2
done
log "ok: the agent planted its traps"

log "list marks the running session"
traps=$(agent-vm list --json | jq -r --arg id "$id" '.[] | select(.id==$id) | .repo_traps | join(" ")')
expect_match "repo_traps" "core.fsmonitor" "$traps"
expect_match "repo_traps has hooks" "hooks/post-checkout" "$traps"
expect_match "list table line" "$id: its repo would make git run programs" "$(agent-list)"

log "diff while running names every trap"
d=$(agent-vm diff --json "$id")
expect_eq "running" true "$(json .running "$d")"
warned=$(json '.warnings[] | "\(.kind) \(.path)"' "$d")
for w in "ci .github/workflows/ci.yml" "editor-tasks .vscode/tasks.json" "envrc .envrc" \
         "git-attributes .gitattributes" "git-modules .gitmodules" "executable script.sh" \
         "git-config core.fsmonitor" "git-config core.pager" "git-config core.editor" \
         "git-config core.sshcommand" "git-config core.askpass" "git-config filter.evil.clean" \
         "git-config filter.evil.smudge" "git-config filter.evil.process" "git-config diff.evil.textconv" \
         "git-config diff.external" "git-config merge.evil.driver" "git-config credential.helper" \
         "git-config gpg.program" "git-config sequence.editor" "git-config pager.log" \
         "git-config pager.status" "git-config uploadpack.packobjectshook" \
         "git-config remote.origin.uploadpack" "git-config alias.st" "git-config core.hookspath" \
         "git-config include.path" "git-hook hooks/post-checkout" "git-hook hooks/pre-commit" \
         "git-hook hooks/post-commit" "git-hook hooks/post-index-change" \
         "git-hook hooks/reference-transaction" "git-hook hooks/pre-auto-gc" "git-hook hooks/post-merge"; do
  grep -qxF -- "$w" <<<"$warned" || fail "no warning '$w' in: $warned"
done
log "ok: every planted trap is named"
no_markers "diff while running"

log "stop defuses"
s=$(agent-stop --json "$id")
removed=$(json '.[0].defused.removed | join(" ")' "$s")
for k in core.fsmonitor core.hookspath include.path alias.st filter.evil.clean hooks/post-checkout \
         hooks/post-index-change; do
  [[ " $removed " == *" $k "* ]] || fail "stop did not remove $k: $removed"
done
kept=$(json '.[0].defused.kept' "$s")
expect_match "copies kept outside the share" "^$AGENT_VM_SESSIONS/.host/$id/defused/" "$kept"
[ -f "$kept/config" ] || fail "no copy of the config in $kept"
[ -f "$kept/hooks/post-checkout" ] || fail "no copy of the hooks in $kept"
no_markers "stop"

log "diff lists exactly the agent's changes"
d=$(agent-vm diff --json "$id")
expect_eq "not running" false "$(json .running "$d")"
expect_eq "base" "$base" "$(json .base "$d")"
expect_eq "commits" "agent: second line" "$(json '.commits[].subject' "$d")"
expect_eq "uncommitted" true "$(json .uncommitted "$d")"
files=$(json '.files[] | "\(.status) \(.path)"' "$d" | sort | tr '\n' ',')
expect_eq "files" "added .envrc,added .gitattributes,added .github/workflows/ci.yml,added .gitmodules,added .vscode/tasks.json,added inc.cfg,added new.txt,deleted gone.txt,modified README,modified script.sh," "$files"
expect_eq "README lines added" 2 "$(json '.files[] | select(.path=="README") | .added' "$d")"
expect_eq "script.sh mode" "100644 100755" "$(json '.files[] | select(.path=="script.sh") | "\(.old_mode) \(.new_mode)"' "$d")"
patch=$(agent-vm diff "$id" 2>/dev/null)
expect_match "patch text" "\+three" "$patch"
stat=$(agent-vm diff --stat "$id")
expect_match "stat" "10 files changed" "$stat"
no_markers "diff"

log "export"
before=$(fingerprint)
head_before=$(git -C "$src" rev-parse HEAD)
e=$(agent-vm export --json "$id")
expect_eq "branch" "agent/$id" "$(json .branch "$e")"
expect_eq "repo" "$(realpath "$src")" "$(json .repo "$e")"
expect_eq "identity" "agent-vm session $id <agent@$id.agent-vm>" "$(json .identity "$e")"
tip=$(json .tip "$e")
[ "$(fingerprint)" = "$before" ] || fail "export changed the source repository: $(diff <(echo "$before") <(fingerprint))"
log "ok: the source repository's HEAD, index and working tree are byte for byte unchanged"
expect_eq "HEAD" "$head_before" "$(git -C "$src" rev-parse HEAD)"
expect_eq "current branch" main "$(git -C "$src" branch --show-current)"
expect_eq "branch tip" "$tip" "$(git -C "$src" rev-parse "agent/$id")"
expect_eq "branch history" "Uncommitted work of agent-vm session $id,agent: second line," \
  "$(git -C "$src" log --format=%s "main..agent/$id" | tr '\n' ',')"
expect_eq "README on the branch" "one two three" "$(git -C "$src" show "agent/$id:README" | tr '\n' ' ' | sed 's/ $//')"
expect_eq "untracked file on the branch" untracked "$(git -C "$src" show "agent/$id:new.txt")"
expect_eq "ignored file left out" "" "$(git -C "$src" ls-tree --name-only "agent/$id" debug.log)"
expect_match "mode on the branch" "^100755" "$(git -C "$src" ls-tree "agent/$id" script.sh)"
# The .gitattributes filter was not applied: the blob is the file's bytes.
expect_eq "attributes file as written" "* filter=evil diff=evil merge=evil" \
  "$(git -C "$src" cat-file blob "agent/$id:.gitattributes")"
expect_match "review hint" "log -p ${base:0:12}..agent/$id" "$(json .review "$e")"

log "a second export is refused, --force replaces"
set +e
msg=$(agent-vm export "$id" 2>&1)
rc=$?
set -e
expect_eq "second export exit" 1 "$rc"
expect_match "second export says why" "already exists" "$msg"
expect_eq "branch untouched" "$tip" "$(git -C "$src" rev-parse "agent/$id")"
f=$(agent-vm export --force --json "$id")
expect_eq "replaced" "$tip" "$(json .replaced "$f")"
expect_eq "branch replaced" "$(json .tip "$f")" "$(git -C "$src" rev-parse "agent/$id")"
[ "$(fingerprint)" = "$before" ] || fail "export --force changed the source repository"
no_markers "export"

log "push"
# libgit2 pushes to a local repository only when it is bare: a session of
# a local working repository takes its work with export, and says so.
set +e
msg=$(agent-vm push "$id" 2>&1)
rc=$?
set -e
expect_eq "push to a local working repository exit" 1 "$rc"
expect_match "push says to export" "use agent-vm export" "$msg"
# A session of a served repository pushes there: the same session, its
# origin (meta.json's repo) pointed at git daemon, receive-pack enabled.
mkdir -p "$TEST_TMP/served"
git clone -q --bare --single-branch --branch main "$src" "$TEST_TMP/served/project.git"
PUSH_PORT=$(free_port)
git daemon --reuseaddr --export-all --enable=receive-pack --base-path="$TEST_TMP/served" \
  --listen=127.0.0.1 --port="$PUSH_PORT" "$TEST_TMP/served" >"$TEST_TMP/push-daemon.log" 2>&1 &
_bg_pids+=($!)
wait_port "$PUSH_PORT" 20
jq --arg u "git://127.0.0.1:$PUSH_PORT/project.git" '.repo = $u' "$sess/meta.json" >"$TEST_TMP/meta.json"
mv "$TEST_TMP/meta.json" "$sess/meta.json"
p=$(agent-vm push --json "$id")
served="$TEST_TMP/served/project.git"
expect_eq "pushed branch" "$(json .tip "$p")" "$(git -C "$served" rev-parse "agent/$id")"
expect_eq "pushed content" untracked "$(git -C "$served" show "agent/$id:new.txt")"
expect_eq "pushed history" "Uncommitted work of agent-vm session $id,agent: second line," \
  "$(git -C "$served" log --format=%s "main..agent/$id" | tr '\n' ',')"
echo more >"$sess/repo/more.txt"
set +e
agent-vm push "$id" >/dev/null 2>&1
rc=$?
set -e
expect_eq "a second push of other work without --force" 1 "$rc"
p=$(agent-vm push --force --json "$id")
expect_eq "push --force replaced" "$(json .tip "$p")" "$(git -C "$served" rev-parse "agent/$id")"
no_markers "push"

log "plain git in the defused session repo"
(cd "$sess/repo" && git status >/dev/null && git log -p >/dev/null && git diff >/dev/null) ||
  fail "plain git fails in the defused session repo"
(cd "$sess/repo" && git st >/dev/null 2>&1) || true  # the alias is gone; it must not run either way
no_markers "git status, log, diff in the session repo after stop"
