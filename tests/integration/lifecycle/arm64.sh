#!/usr/bin/env bash
# An aarch64 guest on this host: the arm64 image (`agent-vm image build
# --arch arm64`, built by scripts/setup as 'default-arm64') booted by
# qemu-system-aarch64 on `virt` under TCG, through the same lifecycle as
# lifecycle.sh with the stand-in agent:
#   spawn -> list (running) -> exec (uname -m is aarch64, the clone is there)
#   -> attach through a pty -> stop (the power button: gpio-keys on virt)
#   -> resume -> stop -> rm, and no QEMU left.
source "$AGENT_VM_SOURCE/tests/integration/lib.sh"

image=${AGENT_VM_ARM64_IMAGE:-default-arm64}
arch=$(agent-vm image list --json | jq -r --arg n "$image" '.[] | select(.name==$n) | .arch')
[ "$arch" = arm64 ] || fail "no arm64 image '$image' in $AGENT_VM_IMAGES (arch '$arch'); build it with 'agent-vm image build --arch arm64' (scripts/setup does)"

make_repo "$TEST_TMP/git/project.git"
serve_git "$TEST_TMP/git"
main_sha=$(git -C "$TEST_TMP/git/project.git" rev-parse main)

log "spawn (aarch64 under TCG)"
t0=$SECONDS
out=$(agent-spawn --image "$image" --repo "git://127.0.0.1:$GIT_PORT/project.git" \
        --agent-cmd "$STAND_IN" --memory 1G --timeout 600 --json)
log "spawn took $((SECONDS - t0))s"
id=$(json .id "$out")
expect_eq "spawn reports ready" true "$(json .ready "$out")"
expect_eq "accelerator" tcg "$(json .accel "$out")"
expect_match "the reason names the architectures" "the image is aarch64 and this host is x86_64" "$(json .accel_reason "$out")"
expect_match "QEMU is qemu-system-aarch64 on virt" "qemu-system-aarch64 .*-machine virt" \
  "$(pgrep -af -- "-name agent-vm-$id" || true)"

log "list"
expect_eq "status (QMP query-status)" running "$(list_field "$id" .status)"
expect_eq "guest agent" up "$(list_field "$id" .guest)"
expect_eq "agent" running "$(list_field "$id" .agent)"

log "exec"
expect_eq "the guest is aarch64" aarch64 "$(agent-exec "$id" -- uname -m)"
expect_eq "HEAD in the guest" "$main_sha" "$(agent-exec "$id" -- git rev-parse HEAD)"
expect_eq "stand-in marker" spawn "$(agent-exec "$id" -- cat .agent-vm-stand-in)"
expect_match "the power button is the device tree's gpio-keys" "gpio-keys" \
  "$(agent-exec "$id" -- sh -c 'cat /sys/class/input/event*/device/name')"

log "attach through a pty"
drv new-session -d -s att -x 100 -y 30 "agent-attach $id; echo attach-exit=\$?; sleep 600"
wait_screen att "agent-vm stand-in agent \(spawn\)" 120
log "ok: attach shows the agent's tmux screen"
drv send-keys -t att C-b d
wait_screen att "attach-exit=0" 60
drv kill-session -t att
expect_eq "agent still running after detach" running "$(list_field "$id" .agent)"

log "stop (power button)"
t0=$SECONDS
out=$(agent-stop "$id" --json)
log "stop took $((SECONDS - t0))s"
expect_eq "stop method" guest-poweroff "$(json '.[0].method' "$out")"
expect_eq "status after stop" stopped "$(list_field "$id" .status)"
expect_eq "no QEMU left" "" "$(pgrep -f -- "-name agent-vm-$id" || true)"
expect_eq "stand-in saw the polite stop" "spawn stopped" "$(tr '\n' ' ' <"$AGENT_VM_SESSIONS/$id/repo/.agent-vm-stand-in" | sed 's/ $//')"

log "resume"
t0=$SECONDS
out=$(agent-resume "$id" --timeout 600 --json)
log "resume took $((SECONDS - t0))s"
expect_eq "resume ready" true "$(json .ready "$out")"
expect_eq "agent continued" "spawn stopped resume" "$(agent-exec "$id" -- cat .agent-vm-stand-in | tr '\n' ' ' | sed 's/ $//')"
expect_eq "still aarch64" aarch64 "$(agent-exec "$id" -- uname -m)"

log "stop and rm"
expect_eq "second stop" guest-poweroff "$(agent-stop "$id" --json | jq -r '.[0].method')"
agent-rm "$id" >/dev/null
[ ! -e "$AGENT_VM_SESSIONS/$id" ] || fail "session folder still there after rm"
expect_eq "no QEMU left after rm" "" "$(pgrep -f -- "-name agent-vm-$id" || true)"
