# The files both images share (guest/common), made fit for NixOS: shebangs
# point into the store and the units call the scripts by store path (the
# power button starts before /usr/libexec/agent-vm is linked). Also the
# pinned opencode from the npm registry, checked against the pin's sha512.
{ pkgs, common }:
let
  lib = pkgs.lib;
  pinLines = lib.filter (l: l != "" && !(lib.hasPrefix "#" l))
    (lib.splitString "\n" (builtins.readFile (common + "/opencode.pin")));
  pin = builtins.listToAttrs (map (l:
    let kv = lib.splitString "=" l;
    in { name = builtins.head kv; value = lib.concatStringsSep "=" (builtins.tail kv); })
    pinLines);

  files = pkgs.runCommand "agent-vm-guest-files" { } ''
    mkdir -p $out/libexec $out/lib $out/etc/ssh
    cp -r ${common}/rootfs/usr/libexec/agent-vm $out/libexec/agent-vm
    cp -r ${common}/rootfs/usr/lib/systemd $out/lib/systemd
    cp ${common}/rootfs/etc/ssh/sshd_config.d/agent-vm.conf $out/etc/ssh/agent-vm.conf
    chmod -R u+w $out
    patchShebangs $out/libexec
    find $out/lib/systemd -type f -exec sed -i "s|/usr/libexec/agent-vm|$out/libexec/agent-vm|g" {} +
  '';

  opencode = pkgs.stdenv.mkDerivation {
    pname = "opencode";
    version = pin.version;
    src = pkgs.fetchurl {
      url = "https://registry.npmjs.org/opencode-linux-x64/-/opencode-linux-x64-${pin.version}.tgz";
      hash = pin.integrity;
    };
    sourceRoot = "package";
    nativeBuildInputs = [ pkgs.autoPatchelfHook pkgs.python3 ];
    # A Bun single-file executable: stripping would cut the program off.
    dontStrip = true;
    # Its models database cut to the provider the gateway speaks (see
    # guest/common/opencode-models; agent-run reads it through
    # /usr/share/agent-vm/opencode-models.json).
    installPhase = ''
      install -Dm755 bin/opencode $out/bin/opencode
      mkdir -p $out/share/agent-vm
      python3 ${common}/opencode-models bin/opencode anthropic >$out/share/agent-vm/opencode-models.json
    '';
  };
in
{
  inherit files opencode pin;
}
