{
  # agent-vm with Nix: the host tool, its commands as apps, a development
  # shell and the NixOS guest image (the files of guest/nixos, used in place).
  #
  #   nix build                        # result/bin/agent-vm and the agent-* links
  #   nix run .#agent-spawn -- --repo ../project --prompt "Fix the tests"
  #   nix develop                      # cmake, ninja, the libraries, catch2, qemu
  #   nix build .#guest-image          # result/ for `agent-vm image import result`
  #   nix flake check                  # the unit tests (checks.unit)
  #
  # Needs a Nix with flakes (--extra-experimental-features 'nix-command flakes').
  description = "agent-vm: coding agents in throwaway QEMU microVMs";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.11";

  outputs = { self, nixpkgs }:
    let
      system = "x86_64-linux";
      pkgs = nixpkgs.legacyPackages.${system};
      lib = nixpkgs.lib;

      # The agent-* links of commands/cli.cc (link_names); each is an app.
      links = [ "agent-spawn" "agent-list" "agent-attach" "agent-stop"
                "agent-resume" "agent-rm" "agent-logs" "agent-exec" "agent-test" ];

      # VERSION from CMakeLists.txt's project() line, as the Debian package takes it.
      projectLine = lib.findFirst (l: lib.hasPrefix "project(agent-vm VERSION " l) ""
        (lib.splitString "\n" (builtins.readFile ./CMakeLists.txt));
      version = builtins.head (builtins.match "project\\(agent-vm VERSION ([0-9.]+) .*" projectLine);

      # The tree without build folders or results.
      src = lib.cleanSourceWith {
        src = ./.;
        filter = path: type:
          lib.cleanSourceFilter path type
          && !(type == "directory" && lib.hasPrefix "build" (baseNameOf path));
      };

      # What the binary runs: QEMU, git (sessions), ssh-keygen (known_hosts).
      runtimePath = lib.makeBinPath [ pkgs.qemu pkgs.git pkgs.openssh ];

      agent-vm = pkgs.stdenv.mkDerivation {
        pname = "agent-vm";
        inherit version src;
        nativeBuildInputs = with pkgs; [ cmake ninja pkg-config makeWrapper ];
        buildInputs = with pkgs; [ boost libgit2 libssh cli11 openssl ];
        cmakeFlags = [ "-DAGENT_VM_BUILD_TESTS=OFF" "-DAGENT_VM_BUILD_BENCH=OFF" ];
        # The links dispatch on argv[0], so the wrapper passes its own on.
        postFixup = ''
          wrapProgram $out/bin/agent-vm --inherit-argv0 --prefix PATH : ${runtimePath}
        '';
        meta = {
          description = "Coding agents in throwaway QEMU microVMs";
          platforms = [ "x86_64-linux" ];
          mainProgram = "agent-vm";
        };
      };

      # The unit tests (no VM): the same build with tests on, `ctest -L unit`.
      unitTests = agent-vm.overrideAttrs (old: {
        pname = "agent-vm-unit-tests";
        cmakeFlags = [ "-DAGENT_VM_BUILD_TESTS=ON" "-DAGENT_VM_BUILD_BENCH=OFF" ];
        doCheck = true;
        nativeCheckInputs = with pkgs; [ catch2 git openssh tmux qemu jq bash ];
        preCheck = "patchShebangs ../tests";
        checkPhase = ''
          runHook preCheck
          ctest -L unit --output-on-failure -j $NIX_BUILD_CORES
          runHook postCheck
        '';
      });

      # The guest image: guest/nixos's modules, as its own flake uses them.
      common = ./guest/common;
      guest = import ./guest/nixos/guest-files.nix { inherit pkgs common; };
      nixos = lib.nixosSystem {
        inherit system;
        specialArgs = { inherit guest; };
        modules = [ ./guest/nixos/configuration.nix ];
      };
      guest-image = import ./guest/nixos/image.nix {
        inherit pkgs common guest;
        config = nixos.config;
        sourceDate = self.lastModifiedDate or "19700101000000";
      };

      app = name: { type = "app"; program = "${agent-vm}/bin/${name}"; };
    in {
      packages.${system} = {
        default = agent-vm;
        inherit agent-vm guest-image;
        guest-files = guest.files;
      };

      apps.${system} = lib.genAttrs links app // { default = app "agent-vm"; };

      devShells.${system}.default = pkgs.mkShell {
        inputsFrom = [ agent-vm ];
        packages = with pkgs; [ catch2 ccache qemu git openssh tmux jq socat python3 ];
      };

      checks.${system}.unit = unitTests;

      nixosConfigurations.agent-vm-guest = nixos;
    };
}
