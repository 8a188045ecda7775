#!/usr/bin/env bash
# The top-level flake cannot be built here (no nixpkgs without network), so
# this checks what can be checked without it:
#  - flake.nix parses (nix-instantiate --parse);
#  - its outputs, evaluated against a stand-in nixpkgs (just the few lib
#    functions and package names it uses, no derivation is built), are the
#    promised ones: packages default/agent-vm/guest-image, one app per agent-*
#    link of commands/cli.cc running the binary's link of that name,
#    devShells.default, checks.unit; the version is CMakeLists.txt's; the
#    build takes the libraries and tools named below, and the wrapper puts
#    QEMU on PATH and passes argv[0] on (the links dispatch on it);
#  - every path it names exists in the repository, and it takes the guest
#    image from the same guest/nixos files as that folder's own flake.
set -euo pipefail
src=$(cd "${1:?source dir}" && pwd)
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }
command -v nix-instantiate >/dev/null || fail "nix-instantiate is missing: apt-get install nix-bin"
command -v jq >/dev/null || fail "jq is missing: apt-get install jq"
flake="$src/flake.nix"
[ -f "$flake" ] || fail "no flake.nix at the top of $src"

nix-instantiate --parse "$flake" >/dev/null || fail "flake.nix does not parse"
ok "flake.nix parses"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/eval.nix" <<'NIX'
{ root }:
let
  flake = import (/. + root + "/flake.nix");
  pkg = name: { outPath = "/nix/store/stand-in-" + name; pname = name; };
  names = [ "cmake" "ninja" "pkg-config" "makeWrapper" "boost" "libgit2" "libssh" "cli11"
            "openssl" "catch2" "qemu" "git" "openssh" "tmux" "jq" "bash" "ccache" "socat" "python3" ];
  drv = a: a // {
    outPath = "/nix/store/stand-in-" + a.pname;
    overrideAttrs = f: drv (a // f a);
  };
  pkgs = builtins.listToAttrs (map (n: { name = n; value = pkg n; }) names) // {
    stdenv.mkDerivation = drv;
    mkShell = a: a;
  };
  lib = rec {
    genAttrs = ns: f: builtins.listToAttrs (map (n: { name = n; value = f n; }) ns);
    hasPrefix = p: s: builtins.substring 0 (builtins.stringLength p) s == p;
    splitString = sep: s: builtins.filter builtins.isString (builtins.split sep s);
    findFirst = pred: def: l: let m = builtins.filter pred l; in if m == [ ] then def else builtins.head m;
    makeBinPath = ps: builtins.concatStringsSep ":" (map (p: "${p}/bin") ps);
    cleanSourceWith = a: a;
    cleanSourceFilter = path: type: true;
    nixosSystem = a: throw "stand-in: nixosSystem is not evaluated";
  };
  out = flake.outputs { self = { }; nixpkgs = { inherit lib; legacyPackages.x86_64-linux = pkgs; }; };
  sys = "x86_64-linux";
  p = out.packages.${sys}.default;
  inputNames = l: map (x: x.pname) l;
in {
  inputs = builtins.attrNames flake.inputs;
  packages = builtins.attrNames out.packages.${sys};
  defaultIsAgentVm = out.packages.${sys}.default == out.packages.${sys}.agent-vm;
  apps = builtins.mapAttrs (n: a: { inherit (a) type program; }) out.apps.${sys};
  devShells = builtins.attrNames out.devShells.${sys};
  devShellFrom = map (d: d.pname) out.devShells.${sys}.default.inputsFrom;
  devShellPackages = inputNames out.devShells.${sys}.default.packages;
  checks = builtins.attrNames out.checks.${sys};
  checkRuns = out.checks.${sys}.unit.doCheck;
  checkInputs = inputNames out.checks.${sys}.unit.nativeCheckInputs;
  version = p.version;
  nativeBuildInputs = inputNames p.nativeBuildInputs;
  buildInputs = inputNames p.buildInputs;
  postFixup = p.postFixup;
}
NIX
out=$(nix-instantiate --eval --strict --json "$tmp/eval.nix" --argstr root "$src" 2>"$tmp/err") \
  || { cat "$tmp/err" >&2; fail "the flake's outputs do not evaluate against the stand-in nixpkgs"; }
q() { jq -r "$1" <<<"$out"; }

[ "$(q '.inputs | join(" ")')" = nixpkgs ] || fail "inputs: $(q .inputs)"
for want in default agent-vm guest-image; do
  q '.packages[]' | grep -qx "$want" || fail "no packages.x86_64-linux.$want"
done
[ "$(q .defaultIsAgentVm)" = true ] || fail "packages.default is not the agent-vm package"
[ "$(q '.devShells | join(" ")')" = default ] || fail "devShells: $(q .devShells)"
[ "$(q '.devShellFrom | join(" ")')" = agent-vm ] || fail "devShells.default does not take agent-vm's inputs"
q '.devShellPackages[]' | grep -qx catch2 || fail "devShells.default has no catch2"
[ "$(q '.checks | join(" ")')" = unit ] && [ "$(q .checkRuns)" = true ] || fail "checks.unit does not run the unit tests"
q '.checkInputs[]' | grep -qx catch2 || fail "checks.unit has no catch2"
ok "packages, devShells.default, checks.unit"

version=$(sed -n 's/^project(agent-vm VERSION \([0-9.]*\) .*/\1/p' "$src/CMakeLists.txt")
[ -n "$version" ] && [ "$(q .version)" = "$version" ] || fail "version: flake says $(q .version), CMakeLists.txt $version"
ok "version $version"
for dep in cmake ninja pkg-config makeWrapper; do
  q '.nativeBuildInputs[]' | grep -qx "$dep" || fail "nativeBuildInputs has no $dep"
done
for dep in boost libgit2 libssh cli11 openssl; do
  q '.buildInputs[]' | grep -qx "$dep" || fail "buildInputs has no $dep"
done
post=$(q .postFixup)
[[ "$post" == *"wrapProgram \$out/bin/agent-vm"* ]] || fail "postFixup does not wrap bin/agent-vm: $post"
[[ "$post" == *--inherit-argv0* ]] || fail "the wrapper does not pass argv[0] on (the agent-* links dispatch on it)"
[[ "$post" == *"--prefix PATH : "*"stand-in-qemu/bin"* ]] || fail "the wrapper does not put qemu on PATH: $post"
ok "build inputs and the wrapper"

# One app per link, each running the binary's link of that name.
mapfile -t links < <(sed -n '/& link_names() {/,/};/p' "$src/commands/cli.cc" | grep -oE '"agent-[a-z]+"' | tr -d '"')
[ ${#links[@]} -ge 8 ] || fail "found only ${#links[@]} links in commands/cli.cc"
for link in "${links[@]}"; do
  [ "$(q ".apps[\"$link\"].type")" = app ] || fail "no app $link"
  [ "$(q ".apps[\"$link\"].program")" = "/nix/store/stand-in-agent-vm/bin/$link" ] \
    || fail "app $link runs $(q ".apps[\"$link\"].program"), not the package's bin/$link"
done
for app in $(q '.apps | keys[]'); do
  [ "$app" = default ] || printf '%s\n' "${links[@]}" | grep -qx "$app" || fail "app $app is no link of commands/cli.cc"
done
[ "$(q '.apps.default.program')" = /nix/store/stand-in-agent-vm/bin/agent-vm ] || fail "apps.default is not bin/agent-vm"
ok "apps: ${links[*]} and default"

# Every path the flake names exists in the repository.
n=0
while read -r path; do
  [ -e "$src/$path" ] || fail "flake.nix names ./$path, which does not exist"
  n=$((n + 1))
done < <(sed 's/#.*//' "$flake" | grep -oE '\./[A-Za-z0-9_.+/-]*[A-Za-z0-9_+-]' | sed 's|^\./||' | sort -u)
[ "$n" -ge 5 ] || fail "found only $n paths in flake.nix"
ok "$n paths named by flake.nix exist"
# The guest image comes from the same guest/nixos files as that flake's own.
for f in guest-files.nix configuration.nix image.nix; do
  grep -qF "./$f" "$src/guest/nixos/flake.nix" || fail "guest/nixos/flake.nix no longer uses $f"
  grep -qF "./guest/nixos/$f" "$flake" || fail "flake.nix does not use guest/nixos/$f"
done
grep -qF 'common = ./guest/common;' "$flake" || fail "flake.nix does not take guest/common"
ok "the guest image is guest/nixos's"
