# The image folder `agent-vm image import` takes: manifest.json, vmlinuz,
# initrd.img and rootfs.squashfs, as guest/debian/build makes them.
{ pkgs, config, common, guest, sourceDate ? "19700101000000" }:
let
  lib = pkgs.lib;
  kernel = config.system.build.kernel;
  kver = config.boot.kernelPackages.kernel.modDirVersion;
  toplevel = config.system.build.toplevel;
  closure = pkgs.closureInfo { rootPaths = [ toplevel ]; };
  cmdline = lib.concatStringsSep " " (lib.filter (w: w != "")
    (lib.splitString " " (lib.replaceStrings [ "\n" ] [ " " ]
      (builtins.readFile (common + "/cmdline")))));
  d = sourceDate;
  built = "${builtins.substring 0 4 d}-${builtins.substring 4 2 d}-${builtins.substring 6 2 d}T"
    + "${builtins.substring 8 2 d}:${builtins.substring 10 2 d}:${builtins.substring 12 2 d}Z";

  # The shared initramfs builder, on this kernel's modules.
  initrd = pkgs.runCommand "agent-vm-initrd.img" {
    nativeBuildInputs = with pkgs; [ bash kmod cpio zstd xz gzip findutils coreutils ];
  } ''
    mkdir -p base/lib/modules
    cp -rL ${config.system.modulesTree}/lib/modules/${kver} base/lib/modules/
    chmod -R u+w base
    bash ${common}/initramfs/make-initramfs --modules-base "$PWD/base" --kver ${kver} \
      --busybox ${pkgs.pkgsStatic.busybox}/bin/busybox --out $out
  '';

  # The read-only root: the system closure under /nix/store, /sbin/init.
  rootfs = pkgs.runCommand "agent-vm-rootfs.squashfs" {
    nativeBuildInputs = [ pkgs.squashfsTools ];
  } ''
    mkdir -p root/nix/store root/sbin root/usr/libexec root/etc root/session \
      root/dev root/proc root/sys root/run root/tmp root/var root/home
    xargs -a ${closure}/store-paths cp -a -t root/nix/store/
    ln -s ${toplevel}/init root/sbin/init
    ln -s ${guest.files}/libexec/agent-vm root/usr/libexec/agent-vm
    cp ${closure}/registration root/nix-path-registration
    mksquashfs root $out -comp lz4 -b 1M -all-root -no-xattrs -quiet
  '';

  manifest = pkgs.writeText "manifest.json" (builtins.toJSON {
    schema = 1;
    name = "nixos";
    source = "nixos";
    kernel = "vmlinuz";
    initrd = "initrd.img";
    rootfs = "rootfs.squashfs";
    rootfs_format = "squashfs";
    inherit cmdline built;
    kernel_version = kver;
    kernel_package = "nixpkgs linux ${config.boot.kernelPackages.kernel.version}";
    nixos_version = config.system.nixos.version;
    opencode_version = guest.pin.version;
    opencode_integrity = guest.pin.integrity;
    # A warm-pool boot starts sshd and the agent, which waits for its claim.
    pooled_agent = true;
    packages = builtins.listToAttrs (map (p: {
      name = lib.getName p;
      value = lib.getVersion p;
    }) config.environment.systemPackages);
    # The system's store hash: it changes whenever any input does.
    input_digest = "nix:${builtins.substring 11 32 (builtins.unsafeDiscardStringContext (toString toplevel))}";
  });
in
pkgs.runCommand "agent-vm-image-nixos" { } ''
  mkdir -p $out
  ln -s ${kernel}/${pkgs.stdenv.hostPlatform.linux-kernel.target} $out/vmlinuz
  ln -s ${initrd} $out/initrd.img
  ln -s ${rootfs} $out/rootfs.squashfs
  cp ${manifest} $out/manifest.json
''
