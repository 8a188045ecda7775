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

# 1b. On amd64 the kernel is the ELF inside Debian's bzImage, booted at its PVH
#     entry: exactly what the kernel package's bzImage holds, and one QEMU
#     starts (every VM test boots it). A file that is no bzImage is refused.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
kernel=$(jq -r .kernel "$images/default/manifest.json")
if [ "$(jq -r .arch "$images/default/manifest.json")" = amd64 ]; then
  [ "$kernel" = vmlinux ] || fail "the amd64 image's kernel is '$kernel', not the PVH ELF vmlinux"
  [ "$(head -c4 "$images/default/vmlinux" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] \
    || fail "$images/default/vmlinux is not an ELF file"
  cache=${AGENT_VM_HOME:-$HOME/.agent-vm}/cache
  kpkg=$(jq -r .kernel_package "$images/default/manifest.json")   # "linux-image-V VERSION"
  deb="$cache/guest/debs/${kpkg% *}_$(echo "${kpkg#* }" | sed 's/:/%3a/')_amd64.deb"
  [ -f "$deb" ] || fail "the kernel package $deb is not in the download cache"
  ktmp=$tmp/kernel
  mkdir "$ktmp"
  dpkg-deb -x "$deb" "$ktmp/pkg"
  pvh=$AGENT_VM_SOURCE/guest/debian/pvh-kernel
  "$pvh" "$ktmp"/pkg/boot/vmlinuz-* "$ktmp/vmlinux" || fail "pvh-kernel refused Debian's bzImage"
  cmp -s "$ktmp/vmlinux" "$images/default/vmlinux" || fail "the image's vmlinux differs from the package's kernel"
  if "$pvh" "$images/default/initrd.img" "$ktmp/bad" 2>"$ktmp/err"; then fail "pvh-kernel took an initramfs"; fi
  grep -q 'not a bzImage' "$ktmp/err" || fail "pvh-kernel's refusal: $(cat "$ktmp/err")"
  [ ! -e "$ktmp/bad" ] || fail "pvh-kernel left output after refusing"
  rm -rf "$ktmp"
fi

# 2. Import into a scratch store: a folder reached through a symlink, as
#    `nix build` leaves `result`.
export AGENT_VM_IMAGES="$tmp/images"
mkdir -p "$tmp/store/x-image"
cp "$images/default/$kernel" "$images/default/initrd.img" "$tmp/store/x-image/"
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
