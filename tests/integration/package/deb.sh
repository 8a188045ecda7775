#!/usr/bin/env bash
# The Debian package on a clean Debian 12: scripts/package builds it; it is
# installed with apt-get (which must find every dependency from its Depends)
# into a fresh minbase chroot of bookworm; there `agent-vm doctor` passes and
# one session of the stand-in agent spawns, lists as running and stops by its
# power button; then `apt-get purge agent-vm` leaves none of the package's
# files behind.
#
# Needs root (mmdebstrap's root mode, chroot, bind mounts) and the host's
# default guest image, bound read-only into the chroot (no image is built).
# Cached under ~/.agent-vm/cache/deb-test: the minbase tarball (rebuilt after
# a week) and apt's downloaded packages, so a second run downloads nothing.
source "$AGENT_VM_SOURCE/tests/integration/lib.sh"

[ "$(id -u)" -eq 0 ] || fail "this test needs root (mmdebstrap, chroot, bind mounts)"
for tool in mmdebstrap dpkg-shlibdeps chroot; do
  command -v "$tool" >/dev/null || fail "$tool is missing: run scripts/setup (scripts/packages lists it)"
done
image="${HOME}/.agent-vm/images/default"
[ -f "$image/manifest.json" ] || fail "no guest image at $image: run 'agent-vm image build' first"

cache="${HOME}/.agent-vm/cache/deb-test"
mkdir -p "$cache/archives/partial"
chroot_dir="$TEST_TMP/root"

# Everything mounted under the chroot is unmounted, and every QEMU started in
# it killed, whatever happens.
deb_cleanup() {
  set +e
  if [ -d "$chroot_dir/root/.agent-vm/sessions" ]; then
    for d in "$chroot_dir"/root/.agent-vm/sessions/*/; do
      [ -d "$d" ] || continue
      id=$(basename "$d")
      chroot "$chroot_dir" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        agent-vm rm --force "$id" >/dev/null 2>&1
      pid=$(cat "$d/run/qemu.pid" 2>/dev/null)
      [ -z "$pid" ] || kill -KILL "$pid" 2>/dev/null
    done
  fi
  for m in $(findmnt -rn -o TARGET | grep -F "$chroot_dir/" | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m"
  done
  if findmnt -rn -o TARGET | grep -qF "$chroot_dir/"; then
    log "mounts left under $chroot_dir; not removing it"
    TEST_TMP_KEEP=1
  fi
}
trap 'rc=$?; deb_cleanup; if [ -n "${TEST_TMP_KEEP:-}" ]; then TEST_TMP=/nonexistent; fi; (exit $rc); cleanup' EXIT

in_root() {
  chroot "$chroot_dir" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}

log "package"
t0=$SECONDS
# The agent-vm under test (this build tree's), not a second build of it.
deb=$("$AGENT_VM_SOURCE/scripts/package" --from-build "$AGENT_VM_PACKAGE_FROM_BUILD" \
        --out "$TEST_TMP/out" 2>"$TEST_TMP/package.log") \
  || { tail -30 "$TEST_TMP/package.log" >&2; fail "scripts/package failed"; }
log "ok: built $(basename "$deb") in $((SECONDS - t0)) s"
expect_match "package name" '^agent-vm_[0-9]+\.[0-9]+\.[0-9]+_amd64\.deb$' "$(basename "$deb")"
depends=$(dpkg-deb -f "$deb" Depends)
for dep in qemu-system-x86 'libgit2-[0-9.]+' 'libssh-[0-9]' 'libssl3' 'libboost-json1\.81\.0' mmdebstrap \
           squashfs-tools squashfs-tools-ng cpio busybox-static zstd ca-certificates kmod eatmydata curl \
           python3 uidmap; do
  [[ ", $depends," =~ ,\ $dep[\ ,] ]] || fail "Depends has no $dep: $depends"
done
log "ok: Depends names the libraries and the image build's tools"
contents=$(dpkg-deb -c "$deb")
for f in ./usr/bin/agent-vm ./usr/bin/agent-list ./usr/share/agent-vm/guest/debian/build \
         ./usr/share/man/man1/agent-vm.1.gz ./usr/share/man/man1/agent-vm-spawn.1.gz \
         ./usr/share/man/man1/agent-spawn.1.gz ./usr/share/man/man1/agent-list.1.gz; do
  grep -qE " $f( |\$)" <<<"$contents" || fail "the package has no $f"
done
for link in $(agent-vm --help | sed -n '/links:/,/are the same/p' | grep -oE 'agent-[a-z]+' | grep -vx agent-vm); do
  grep -qE " ./usr/bin/$link -> agent-vm\$" <<<"$contents" || fail "the package has no link usr/bin/$link"
done
log "ok: the binary, its links, the guest files and the man pages are in it"

log "clean bookworm chroot (minbase)"
t0=$SECONDS
tarball="$cache/bookworm-minbase.tar"
if [ -z "$(find "$tarball" -mtime -7 2>/dev/null)" ]; then
  # The host's own Debian mirrors, as the image build uses them.
  mapfile -t mirrors < <(apt-cache policy 2>/dev/null | awk '
    / [0-9]+ (https?|file):/ && $4 == "amd64" { url=$2; split($3, sc, "/"); next_is=1; next }
    next_is && /release/ { if ($0 ~ /o=Debian/ && sc[1] ~ "^bookworm") print "deb " url " " sc[1] " " sc[2]; next_is=0 }')
  [ ${#mirrors[@]} -gt 0 ] || mirrors=("deb http://deb.debian.org/debian bookworm main"
                                       "deb http://deb.debian.org/debian bookworm-updates main"
                                       "deb http://deb.debian.org/debian-security bookworm-security main")
  mmdebstrap --variant=minbase --mode=root --format=tar --skip=cleanup/apt/lists \
    --aptopt='Acquire::Retries "3"' bookworm "$tarball.part" - "${mirrors[@]}" </dev/null \
    >"$TEST_TMP/mmdebstrap.log" 2>&1 || { tail -20 "$TEST_TMP/mmdebstrap.log" >&2; fail "mmdebstrap failed"; }
  mv "$tarball.part" "$tarball"
  log "ok: minbase tarball made in $((SECONDS - t0)) s"
fi
mkdir -p "$chroot_dir"
tar -C "$chroot_dir" -xf "$tarball"
cp /etc/resolv.conf "$chroot_dir/etc/resolv.conf"
mount -t proc proc "$chroot_dir/proc"
mount --rbind /dev "$chroot_dir/dev" && mount --make-rslave "$chroot_dir/dev"
mount --rbind /sys "$chroot_dir/sys" && mount --make-rslave "$chroot_dir/sys"
mount --bind "$cache/archives" "$chroot_dir/var/cache/apt/archives"
mkdir -p "$chroot_dir/root/.agent-vm/images/default"
mount --bind "$image" "$chroot_dir/root/.agent-vm/images/default"
mount -o remount,bind,ro "$chroot_dir/root/.agent-vm/images/default"
# Nothing from the host's install is visible in the chroot.
[ ! -e "$chroot_dir/usr/bin/agent-vm" ] && [ ! -e "$chroot_dir/usr/bin/qemu-system-x86_64" ] \
  || fail "the chroot is not clean"
log "ok: chroot ready in $((SECONDS - t0)) s"

log "apt-get install ./$(basename "$deb")"
t0=$SECONDS
cp "$deb" "$chroot_dir/tmp/"
in_root apt-get update -q >"$TEST_TMP/apt.log" 2>&1 || { tail -20 "$TEST_TMP/apt.log" >&2; fail "apt-get update failed"; }
in_root apt-get install -y -q --no-install-recommends "/tmp/$(basename "$deb")" >>"$TEST_TMP/apt.log" 2>&1 \
  || { tail -30 "$TEST_TMP/apt.log" >&2; fail "apt-get install of the package failed"; }
log "ok: installed with its dependencies in $((SECONDS - t0)) s"
in_root dpkg -L agent-vm >"$TEST_TMP/files"
expect_eq "installed version" "$(dpkg-deb -f "$deb" Version)" "$(in_root dpkg-query -W -f='${Version}' agent-vm)"
expect_match "agent-vm --version" "$(dpkg-deb -f "$deb" Version)" "$(in_root agent-vm --version)"
# The chroot has no man-db (minbase): the roff source names the command.
in_root zcat /usr/share/man/man1/agent-vm-spawn.1.gz | grep -F 'agent\-vm\-spawn \- Create a session' >/dev/null \
  || fail "man page agent-vm-spawn.1.gz has no NAME line"
expect_eq "agent-spawn.1 points at agent-vm-spawn.1" ".so man1/agent-vm-spawn.1" "$(in_root zcat /usr/share/man/man1/agent-spawn.1.gz)"

log "doctor"
in_root agent-vm doctor --json >"$TEST_TMP/doctor.json" 2>"$TEST_TMP/doctor.err" \
  || { cat "$TEST_TMP/doctor.err" "$TEST_TMP/doctor.json" >&2; fail "agent-vm doctor failed in the chroot"; }
expect_eq "doctor ok" true "$(jq -r .ok "$TEST_TMP/doctor.json")"
log "ok: doctor: $(jq -r '.checks[] | select(.area == "qemu" or .area == "image" or .area == "accelerator") | .verdict' "$TEST_TMP/doctor.json" | tr '\n' ';')"

log "spawn the stand-in agent"
make_repo "$chroot_dir/root/project"
t0=$SECONDS
out=$(in_root agent-spawn --repo /root/project --ref feature --agent-cmd "$STAND_IN" --memory 512M --json 2>"$TEST_TMP/spawn.err") \
  || { cat "$TEST_TMP/spawn.err" >&2; fail "agent-spawn failed in the chroot"; }
id=$(json .id "$out")
expect_eq "spawn reports ready" true "$(json .ready "$out")"
log "ok: spawned $id in $((SECONDS - t0)) s"
expect_eq "status" running "$(in_root agent-vm list --json | jq -r --arg id "$id" '.[] | select(.id==$id) | .status')"
expect_eq "stand-in marker" spawn "$(in_root agent-exec "$id" -- cat .agent-vm-stand-in)"
expect_eq "stop method" guest-poweroff "$(in_root agent-stop "$id" --json | jq -r '.[0].method')"
expect_eq "status after stop" stopped "$(in_root agent-vm list --json | jq -r --arg id "$id" '.[] | select(.id==$id) | .status')"
in_root agent-rm "$id" >/dev/null

log "apt-get purge agent-vm"
in_root apt-get purge -y -q agent-vm >>"$TEST_TMP/apt.log" 2>&1 || { tail -20 "$TEST_TMP/apt.log" >&2; fail "purge failed"; }
expect_eq "package state" "" "$(in_root dpkg-query -W -f='${db:Status-Status}' agent-vm 2>/dev/null || true)"
left=()
n=0
while read -r path; do
  [ "$path" != "/." ] || continue  # dpkg -L's first line: the root
  n=$((n + 1))
  [ -e "$chroot_dir$path" ] || [ -L "$chroot_dir$path" ] || continue
  # A folder other packages also own (/usr/bin, /usr/share/man/man1) stays.
  if [ -d "$chroot_dir$path" ] && [ ! -L "$chroot_dir$path" ] && in_root dpkg-query -S "$path" >/dev/null 2>&1; then continue; fi
  left+=("$path")
done <"$TEST_TMP/files"
[ ${#left[@]} -eq 0 ] || fail "purge left ${#left[@]} of the package's paths: ${left[*]:0:10}"
[ "$n" -gt 50 ] || fail "dpkg -L listed only $n paths"
log "ok: none of the package's $n paths is left (shared folders aside)"
