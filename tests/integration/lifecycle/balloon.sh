#!/usr/bin/env bash
# Free page reporting on a real guest: QEMU has the balloon with reporting
# on, the guest's driver is bound (loaded by the initramfs), and memory the
# guest touches and frees goes back to the host.
source "$AGENT_VM_SOURCE/tests/integration/lib.sh"

make_repo "$TEST_TMP/git/b.git"
serve_git "$TEST_TMP/git"

log "spawn"
agent-spawn --repo "git://127.0.0.1:$GIT_PORT/b.git" --agent-cmd "$STAND_IN" --memory 512M --json >"$TEST_TMP/s.json"
id=$(jq -r .id "$TEST_TMP/s.json")
pid=$(list_field "$id" .pid)
qmp_sock="$AGENT_VM_SESSIONS/$id/run/qmp.sock"

expect_eq "QEMU's balloon reports free pages" true \
  "$(agent-vm qmp "$qmp_sock" qom-get '{"path":"/machine/peripheral/balloon","property":"free-page-reporting"}')"
bound=$(agent-exec "$id" --root -- sh -c 'ls /sys/bus/virtio/drivers/virtio_balloon/ 2>/dev/null' || true)
[[ "$bound" =~ virtio[0-9]+ ]] ||
  fail "the guest has not loaded virtio_balloon: the image in $AGENT_VM_IMAGES predates it in the initramfs; rebuild it with 'agent-vm image build'"
log "ok: the guest's virtio_balloon driver is bound"

rss() { awk '/^Rss:/ {print int($2 / 1024)}' "/proc/$pid/smaps_rollup"; }  # MiB
before=$(rss)
# 256 MiB touched page by page, then freed when the process exits.
agent-exec "$id" -- python3 -c 'x = bytearray(256 << 20); x[::4096] = b"\1" * (len(x) // 4096); open("/dev/null", "w").write(str(sum(x[::4096])))'
peak=$(rss)
log "QEMU RSS: ${before} MiB before, ${peak} MiB after the guest touched 256 MiB"
[ "$peak" -ge $((before + 128)) ] || fail "the guest's 256 MiB did not show in QEMU's RSS (${before} -> ${peak} MiB)"
# The guest reports freed blocks in batches, 2 s apart: wait for them, up to 90 s.
deadline=$((SECONDS + 90))
until [ "$(rss)" -le $((peak - 128)) ]; do
  [ $SECONDS -lt $deadline ] || fail "QEMU's RSS stayed at $(rss) MiB (peak ${peak} MiB): the freed memory was not given back"
  sleep 1
done
log "ok: QEMU RSS back to $(rss) MiB after the guest freed it"
agent-stop "$id" >/dev/null
