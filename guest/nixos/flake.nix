{
  # The agent-vm guest image built from NixOS: the same artifacts and manifest
  # as `agent-vm image build` (kernel, initrd, read-only squashfs root), the
  # same initramfs, units and scripts (guest/common), the same contract.
  #
  #   nix build ./guest/nixos            # -> result/{manifest.json,vmlinuz,initrd.img,rootfs.squashfs}
  #   agent-vm image import result       # into ~/.agent-vm/images/nixos
  #   agent-vm image import result --name default   # to boot it for every session
  description = "agent-vm guest image (NixOS)";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.11";

  outputs = { self, nixpkgs }:
    let
      system = "x86_64-linux";
      pkgs = nixpkgs.legacyPackages.${system};
      common = ../common;
      guest = import ./guest-files.nix { inherit pkgs common; };
      nixos = nixpkgs.lib.nixosSystem {
        inherit system;
        specialArgs = { inherit guest; };
        modules = [ ./configuration.nix ];
      };
    in {
      nixosConfigurations.agent-vm = nixos;
      packages.${system} = {
        default = import ./image.nix {
          inherit pkgs common guest;
          config = nixos.config;
          sourceDate = self.lastModifiedDate or "19700101000000";
        };
        guest-files = guest.files;
      };
    };
}
