#!/usr/bin/env bash
# The one test with the real agent: spawn without --agent-cmd runs opencode
# from the image with the prompt, the API key reaches neither its environment
# nor any command line (the host's model gateway holds it; the agent has the
# gateway's URL and a placeholder), and resume runs `opencode --continue`,
# with agent-followup handing over a new instruction when agent-resume
# was given one (the instruction reaching the model is agent_loop's test). Readiness
# never waits for opencode's UI (~100 s under TCG), so neither does this test.
source "$AGENT_VM_SOURCE/tests/integration/lib.sh"

make_repo "$TEST_TMP/git/project.git"
serve_git "$TEST_TMP/git"
secret="sk-test-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"

log "spawn with the real agent"
id=$(ANTHROPIC_API_KEY="$secret" agent-spawn --repo "git://127.0.0.1:$GIT_PORT/project.git" \
       --prompt "Say hello" -q)
# The pane runs opencode with the prompt, as the agent user, in the repo.
ps_line=$(agent-exec "$id" --root -- sh -c 'ps -o user=,args= -C opencode | head -1')
expect_match "opencode runs with the prompt" '^agent +opencode --prompt Say hello' "$ps_line"
pid=$(agent-exec "$id" --root -- pgrep -o -x opencode)
expect_eq "its working directory" /session/repo "$(agent-exec "$id" --root -- readlink "/proc/$pid/cwd")"
expect_eq "the gateway's URL is in its environment" 1 \
  "$(agent-exec "$id" --root -- sh -c "tr '\\0' '\\n' </proc/$pid/environ | grep -c '^ANTHROPIC_BASE_URL=http://10.0.2.100/v1\$'")"
expect_eq "the API key is not in its environment" 0 \
  "$(printf %s "$secret" | agent-exec "$id" --root -i -- sh -c "cat >/run/pat; grep -cFf /run/pat /proc/$pid/environ; rm -f /run/pat")"
expect_eq "XDG_DATA_HOME" 1 \
  "$(agent-exec "$id" --root -- sh -c "tr '\\0' '\\n' </proc/$pid/environ | grep -c '^XDG_DATA_HOME=/session/opencode\$'")"
# The secret goes to grep in a file, so no command line of the check holds it.
expect_eq "the key on no guest command line" 0 \
  "$(printf %s "$secret" | agent-exec "$id" --root -i -- sh -c 'cat >/run/pat; cat /proc/[0-9]*/cmdline 2>/dev/null | tr "\0" "\n" | grep -cFf /run/pat; rm -f /run/pat')"
printf %s "$secret" >"$TEST_TMP/pat"
expect_eq "the key on no host command line" 0 "$(cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\0' '\n' | grep -cFf "$TEST_TMP/pat" || true)"
qemu_pid=$(jq -r .qemu.pid "$AGENT_VM_SESSIONS/$id/meta.json")
expect_eq "not in QEMU's environment" 0 "$(tr '\0' '\n' </proc/$qemu_pid/environ | grep -cFf "$TEST_TMP/pat" || true)"
expect_eq "not in any log" 0 "$(cat "$AGENT_VM_SESSIONS/$id"/run/*.log "$AGENT_VM_SESSIONS/$id/meta.json" | grep -cFf "$TEST_TMP/pat" || true)"
expect_eq "not in the env file the guest reads" 0 "$(grep -cFf "$TEST_TMP/pat" "$AGENT_VM_SESSIONS/$id/env" || true)"
expect_eq "only in the host-only folder" "$AGENT_VM_SESSIONS/.host/$id/api-key" \
  "$(grep -rlFf "$TEST_TMP/pat" "$AGENT_VM_SESSIONS" --exclude-dir=repo || true)"
expect_eq "env file mode" 600 "$(stat -c %a "$AGENT_VM_SESSIONS/$id/env")"

log "stop and resume: opencode --continue"
agent-stop "$id" >/dev/null
agent-resume "$id" -q >/dev/null
ps_line=$(agent-exec "$id" --root -- sh -c 'ps -o user=,args= -C opencode | head -1')
expect_match "opencode continues" '^agent +opencode --continue$' "$ps_line"

log "resume with a new instruction: opencode --continue with its server, and agent-followup"
agent-stop "$id" >/dev/null
agent-resume "$id" --prompt 'Now add a "test" -x' -q >/dev/null
ps_line=$(agent-exec "$id" --root -- sh -c 'ps -o user=,args= -C opencode | head -1')
expect_match "opencode continues with its server on loopback" \
  '^agent +opencode --continue --hostname 127.0.0.1 --port 4096$' "$ps_line"
expect_eq "the instruction, as given, waits for it" 'Now add a "test" -x' \
  "$(agent-exec "$id" --root -- cat /run/agent-vm/agent/followup.txt)"
# agent-followup waits for opencode's server (a minute or two under TCG), or has handed it over.
expect_match "agent-followup hands it over" '^(waiting|agent-followup: given to session ses_)' \
  "$(agent-exec "$id" --root -- sh -c 'if pgrep -u agent -f "^/bin/bash /usr/libexec/agent-vm/agent-followup 4096 " >/dev/null
    then echo waiting; else cat /run/agent-vm/agent/followup.log; fi')"
log "a later resume without one does not repeat it"
agent-stop "$id" >/dev/null
agent-resume "$id" -q >/dev/null
ps_line=$(agent-exec "$id" --root -- sh -c 'ps -o user=,args= -C opencode | head -1')
expect_match "opencode continues, no instruction" '^agent +opencode --continue$' "$ps_line"
agent-stop "$id" >/dev/null
