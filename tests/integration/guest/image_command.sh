#!/usr/bin/env bash
# agent-vm image end to end: a cached build is quick and changes nothing,
# list shows the image, import takes a folder with a manifest (as the NixOS
# flake's result comes in), a broken image is reported, rm removes.
set -euo pipefail
fail() { echo "FAIL: $*" >&2; exit 1; }

# 1. The default image exists (scripts/setup builds it); a second build is a
#    cache hit that leaves the image as it is.
images=${AGENT_VM_IMAGES:-${AGENT_VM_HOME:-$HOME/.agent-vm}/images}
agent-vm image build
before=$(stat -c %Y "$images/default/manifest.json")
out=$(agent-vm image build --json)
echo "$out" | grep -q '"rebuilt":false' || fail "a second build rebuilt the image: $out"
[ "$(stat -c %Y "$images/default/manifest.json")" = "$before" ] || fail "the cached build touched the manifest"
agent-vm image list | grep -Eq '^default +debian ' || fail "image list does not show the default image"

# 2. Import into a scratch store: a folder reached through a symlink, as
#    `nix build` leaves `result`.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export AGENT_VM_IMAGES="$tmp/images"
mkdir -p "$tmp/store/x-image"
cp "$images/default/vmlinuz" "$images/default/initrd.img" "$tmp/store/x-image/"
ln -s "$images/default/rootfs.squashfs" "$tmp/store/x-image/rootfs.squashfs"
sed -e 's/"source":"debian"/"source":"nixos"/' -e 's/"name":"default"/"name":"nixos"/' \
  "$images/default/manifest.json" >"$tmp/store/x-image/manifest.json"
ln -s "$tmp/store/x-image" "$tmp/result"
agent-vm image import "$tmp/result" | grep -q "imported image 'nixos' (nixos" || fail "import"
[ -f "$tmp/images/nixos/rootfs.squashfs" ] && [ ! -L "$tmp/images/nixos/rootfs.squashfs" ] \
  || fail "import did not copy the rootfs"
agent-vm image list --json | grep -q '"name":"nixos","dir":"'"$tmp/images/nixos"'","source":"nixos"' \
  || fail "image list --json: $(agent-vm image list --json)"

# 3. A broken image is listed as such; loading it names the missing file.
cp -r "$tmp/images/nixos" "$tmp/images/broken"
rm "$tmp/images/broken/initrd.img"
agent-vm image list | grep -q '^broken .*BROKEN: .*initrd' || fail "broken image not reported"

# 4. A folder without a manifest is refused with the fix.
mkdir "$tmp/empty"
if err=$(agent-vm image import "$tmp/empty" 2>&1); then fail "importing an empty folder worked"; fi
echo "$err" | grep -q "no manifest.json" || fail "unexpected error: $err"

# 5. rm.
agent-vm image rm nixos >/dev/null
[ ! -e "$tmp/images/nixos" ] || fail "rm left the image"
echo "1 passed, 0 failed"
