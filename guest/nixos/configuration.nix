# NixOS configuration of the agent-vm guest: the guest contract of docs/design.md
# with the units and scripts of guest/common (the Debian image uses the same).
# The kernel boots the shared initramfs (guest/common/initramfs), which mounts
# the squashfs root under a tmpfs overlay and runs /sbin/init (this system's
# stage-2 init), so NixOS's own initrd is not used.
{ config, lib, pkgs, modulesPath, guest, ... }:
let
  # Every tool the guest scripts and the agent call: systemPackages.
  sysPath = "/run/wrappers/bin:/run/current-system/sw/bin:/run/current-system/sw/sbin";
in
{
  imports = [ (modulesPath + "/profiles/minimal.nix") ];

  boot.loader.grub.enable = false;
  boot.initrd.enable = false;
  boot.kernelPackages = pkgs.linuxPackages;
  # The initramfs has mounted the root already; nothing is checked or remounted.
  fileSystems."/" = { device = "overlay"; fsType = "overlay"; noCheck = true; };
  systemd.suppressedSystemUnits = [ "systemd-remount-fs.service" ];

  networking.hostName = "agent-vm";
  networking.useDHCP = false;      # agent-vm-setup configures QEMU user networking
  networking.firewall.enable = false;
  networking.resolvconf.enable = false;

  # The shared units: from the package, enabled where the Debian image enables them.
  systemd.packages = [ guest.files ];
  systemd.targets.local-fs.wants = [ "session.mount" ];
  systemd.targets.sysinit.wants = [ "agent-vm-power-button.service" "agent-vm-guest-agent.service" ];
  systemd.targets.multi-user.wants = [ "agent-vm-setup.service" "agent-vm-pool-setup.service" "agent-vm-agent.service" ];
  systemd.services.agent-vm-setup.environment.PATH = lib.mkForce sysPath;
  systemd.services.agent-vm-pool-setup.environment.PATH = lib.mkForce sysPath;
  systemd.services.agent-vm-agent.environment.PATH = lib.mkForce sysPath;
  systemd.services.agent-vm-power-button.environment.PATH = lib.mkForce sysPath;
  systemd.services.agent-vm-guest-agent.environment.PATH = lib.mkForce sysPath;
  # Where the contract names them (agent-status through QGA, the stand-in).
  systemd.tmpfiles.rules = [
    "L+ /usr/libexec/agent-vm - - - - ${guest.files}/libexec/agent-vm"
    "L+ /usr/share/agent-vm/opencode-models.json - - - - ${guest.opencode}/share/agent-vm/opencode-models.json"
  ];
  # agent-vm-power-button handles the button; logind must not as well.
  services.logind.powerKey = "ignore";
  services.journald.extraConfig = "Storage=volatile\nRuntimeMaxUse=16M";
  # As guest/common's system.conf.d/agent-vm.conf (the Debian image reads it
  # there; NixOS writes system.conf from options): a unit that hangs on the
  # way down is killed after 10 s, well within the host's stop timeout.
  systemd.extraConfig = "DefaultTimeoutStopSec=10s";

  # sshd: the session's host key and client key, copied by agent-vm-setup.
  services.openssh = {
    enable = true;
    hostKeys = [ ];
    authorizedKeysFiles = lib.mkForce [ "/run/agent-vm/ssh/authorized_keys" ];
    settings = {
      PasswordAuthentication = false;
      KbdInteractiveAuthentication = false;
      PermitRootLogin = "no";
    };
    extraConfig = builtins.readFile "${guest.files}/etc/ssh/agent-vm.conf";
  };
  systemd.services.sshd = {
    requires = [ "agent-vm-setup.service" ];
    after = [ "agent-vm-setup.service" "agent-vm-pool-setup.service" ];
  };
  # OpenSSH 9.8 and later take the host keys once, in the listener: a warm-pool
  # VM's claim (agent-vm-setup --claim) restarts sshd on its new key.
  environment.etc."agent-vm/sshd-reads-keys-at-start".text = "";

  # qemu-guest-agent runs from the shared agent-vm-guest-agent.service.
  services.qemuGuest.enable = false;

  # The agent user; agent-vm-setup moves it to the uid:gid owning /session/repo.
  users.mutableUsers = true;
  users.groups.agent.gid = 1000;
  users.users.agent = {
    isNormalUser = true;
    uid = 1000;
    group = "agent";
    home = "/home/agent";
    createHome = true;
    hashedPassword = "*";
    shell = pkgs.bashInteractive;
  };

  environment.systemPackages = with pkgs; [
    guest.opencode
    qemu_kvm.ga
    tmux git curl cacert openssh iproute2 procps
    gcc gnumake binutils pkg-config python3 nodejs ripgrep jq less file patch unzip xz zstd
    shadow util-linux coreutils gnugrep gnused gawk findutils diffutils which vim
  ];

  documentation.enable = false;
  system.stateVersion = "24.11";
}
