# shellcheck shell=bash
# Host side of the real-boot VM test (source it after test/e2e/lib.sh; needs bash and root).
# Builds guest root filesystems from busybox, the Debian cloud kernel and our own binaries, a GPT
# disk image with BIOS GRUB + /boot + rootfs A/B, data and request disks, and boots it under qemu
# (TCG) once per call, with the serial console in a log file. Every loop device, mount and qemu
# process is recorded and released by vm_cleanup (installed as the EXIT trap by vm_init).
#
# Facts behind the recipe (TCG, partx -a, grub-install from an unpacked grub2-common with a
# udevadm stand-in): ../shared/reference/vm-boot.md. The disks are virtio-blk (NVMe under qemu 7.2's
# TCG wedged the guest's I/O for good on a loaded host); the cloud kernel builds virtio_blk as a
# module, so each slot boots with a small initramfs (busybox, blkid, the kernel package's own
# virtio modules; initramfs-init.sh) like a distro's.

VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${OTA_VM_CACHE:=/var/cache/ota-vm-debs}"
GRUB2_COMMON=$OTA_VM_CACHE/grub2-common
VM_KERNEL=$OTA_VM_CACHE/kernel/vmlinuz
VM_MODULES=$OTA_VM_CACHE/kernel/modules  # *.ko + load-order (deploy/fetch-vm-debs.sh)

# Firmware of the machine (OTA_VM_FIRMWARE): bios = SeaBIOS, GRUB for i386-pc, disk p4 bios_grub
# (first) + p1 /boot + p2 slot A + p3 slot B; uefi = OVMF, GRUB for x86_64-efi at the ESP's
# removable-media path, disk p1 ESP (vfat) + p2 /boot + p3 slot A + p4 slot B (the layout of a
# UEFI install; otaclient's GRUB backend finds the slots the same way on both).
VM_FIRMWARE=${OTA_VM_FIRMWARE:-bios}
if [[ $VM_FIRMWARE == uefi ]]; then
  VM_P_BOOT=2 VM_P_A=3 VM_P_B=4
else
  VM_P_BOOT=1 VM_P_A=2 VM_P_B=3
fi
OVMF_CODE=/usr/share/OVMF/OVMF_CODE.fd
OVMF_VARS=/usr/share/OVMF/OVMF_VARS.fd

# Fixed GPT identities of the system disk.
PARTUUID_ESP=8a1f3c52-0b6e-4c1a-9d43-2f0a7e6b1c0e
PARTUUID_BOOT=8a1f3c52-0b6e-4c1a-9d43-2f0a7e6b1c01
PARTUUID_A=8a1f3c52-0b6e-4c1a-9d43-2f0a7e6b1c0a
PARTUUID_B=8a1f3c52-0b6e-4c1a-9d43-2f0a7e6b1c0b
DISK_GUID=8a1f3c52-0b6e-4c1a-9d43-2f0a7e6b1c00

VM_LOOPS=()
VM_MOUNTS=()
VM_QEMU_PIDFILES=()
VM_BOOTS=0

# The cached kernel's release ("6.1.0-56-cloud-amd64"), from its package name.
vm_kernel_version() { sed 's/^linux-image-//' "$OTA_VM_CACHE/kernel/package"; }

vm_skip() {
  echo "SKIP: $*"
  exit 77
}

# vm_check_prerequisites: exit 77 with the reason when this machine cannot run the test at all.
vm_check_prerequisites() {
  [[ $(id -u) -eq 0 ]] || vm_skip "the VM test needs root (loop devices, mounts)"
  [[ -e /dev/loop-control ]] || vm_skip "no loop devices (/dev/loop-control missing)"
  local tool
  for tool in qemu-system-x86_64 grub-fstest grub-editenv sgdisk partx losetup mkfs.ext4 busybox \
    jq timeout ldd strip cpio gzip blkid; do
    command -v "$tool" >/dev/null || vm_skip "$tool not installed (deploy/install-deps.sh)"
  done
  [[ -d /usr/lib/grub/i386-pc ]] || vm_skip "grub-pc-bin (i386-pc modules) not installed"
  [[ -f "$VM_KERNEL" && -f "$OTA_VM_CACHE/kernel/package" && -s "$VM_MODULES/load-order" &&
    -x "$GRUB2_COMMON/usr/sbin/grub-install" ]] ||
    vm_skip "run deploy/fetch-vm-debs.sh (cloud kernel, its virtio modules + grub2-common cache" \
      "$OTA_VM_CACHE missing or from an older version of the script)"
  case $VM_FIRMWARE in
  bios) ;;
  uefi)
    [[ -f $OVMF_CODE && -f $OVMF_VARS ]] || vm_skip "ovmf not installed ($OVMF_CODE)"
    [[ -d /usr/lib/grub/x86_64-efi ]] || vm_skip "grub-efi-amd64-bin (x86_64-efi) not installed"
    for tool in grub-mkimage mkfs.vfat mmd mcopy; do
      command -v "$tool" >/dev/null || vm_skip "$tool not installed (deploy/install-deps.sh)"
    done
    ;;
  *) fail "OTA_VM_FIRMWARE=$VM_FIRMWARE: expected bios or uefi" ;;
  esac
  local probe
  probe=$(losetup -f 2>/dev/null) || vm_skip "no free loop device"
  [[ -n "$probe" ]] || vm_skip "no free loop device"
}

vm_cleanup() {
  local f pid i
  for f in "${VM_QEMU_PIDFILES[@]}"; do
    pid=$(cat "$f" 2>/dev/null) || continue
    kill -KILL "$pid" 2>/dev/null || true
  done
  for ((i = ${#VM_MOUNTS[@]} - 1; i >= 0; i--)); do
    umount "${VM_MOUNTS[i]}" 2>/dev/null || umount -l "${VM_MOUNTS[i]}" 2>/dev/null || true
  done
  for f in "${VM_LOOPS[@]}"; do
    partx -d "$f" 2>/dev/null || true
    losetup -d "$f" 2>/dev/null || true
  done
  e2e_cleanup
}

vm_init() {
  vm_check_prerequisites
  for b in "$OTACLIENT" "$OTACTL" "$OTA_IMAGE"; do
    [[ -x "$b" ]] || fail "missing binary $b (build first)"
  done
  E2E_WORK=$(mktemp -d "${TMPDIR:-/tmp}/ota-vm.XXXXXX")
  trap vm_cleanup EXIT
  log "work dir $E2E_WORK"
}

# copy_with_libs ROOT FILE...: FILE (a host binary) and every library ldd names for it, copied into
# ROOT at the same paths, so it runs in the busybox guest exactly as on the host.
copy_with_libs() {
  local root=$1 file lib
  shift
  for file in "$@"; do
    mkdir -p "$root$(dirname "$file")"
    cp -L "$file" "$root$file"
    while read -r lib; do
      [[ -e "$root$lib" ]] && continue
      mkdir -p "$root$(dirname "$lib")"
      cp -L "$lib" "$root$lib"
    done < <(ldd "$file" | grep -oE '/[^ ]+\.so[^ ]*' | sort -u)
  done
}

# make_initramfs FILE: the guest's initramfs (gzip'd newc cpio, like Debian's): busybox (static),
# util-linux blkid with its libraries (root=PARTUUID=..., which busybox's findfs cannot resolve),
# the virtio modules from the kernel package in load order, and initramfs-init.sh as /init.
make_initramfs() {
  local out=$1 dir=$E2E_WORK/initramfs applet module
  rm -rf "$dir"
  mkdir -p "$dir"/usr/{bin,sbin,lib,lib64} "$dir"/{dev,proc,sys,newroot}
  ln -s usr/bin "$dir/bin"
  ln -s usr/sbin "$dir/sbin"
  ln -s usr/lib "$dir/lib"
  ln -s usr/lib64 "$dir/lib64"
  cp /bin/busybox "$dir/usr/bin/busybox"
  for applet in $(busybox --list); do
    [[ $applet == busybox || $applet == blkid ]] && continue
    ln -sf busybox "$dir/usr/bin/$applet"
  done
  copy_with_libs "$dir" /usr/sbin/blkid
  mkdir -p "$dir/usr/lib/modules"
  while read -r module; do
    cp "$VM_MODULES/$module.ko" "$dir/usr/lib/modules/"
  done <"$VM_MODULES/load-order"
  cp "$VM_MODULES/load-order" "$dir/usr/lib/modules/load-order"
  install -m 0755 "$VM_DIR/initramfs-init.sh" "$dir/init"
  mknod -m 0600 "$dir/dev/console" c 5 1
  (cd "$dir" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet) |
    gzip -9n >"$out" || fail "cannot pack the initramfs"
}

# stage_base_rootfs DIR: the guest root filesystem every image starts from (usr-merged like
# Debian 12): busybox, the cloud kernel and its initramfs in /boot (each slot boots its own), our
# init, otaclient + otactl, the tools the GRUB backend runs (grub-editenv, mkfs.ext4, blkid), the
# CA group otaclient trusts, users/groups.
stage_base_rootfs() {
  local root=$1 applet
  mkdir -p "$root"/usr/{bin,sbin,lib,lib64} "$root"/{boot,dev,proc,sys,run,tmp,mnt,srv,var/lib,etc/vm}
  mkdir -p "$root"/opt/ota/client "$root/root"
  ln -s usr/bin "$root/bin"
  ln -s usr/sbin "$root/sbin"
  ln -s usr/lib "$root/lib"
  ln -s usr/lib64 "$root/lib64"
  chmod 1777 "$root/tmp"
  cp /bin/busybox "$root/usr/bin/busybox"
  for applet in $(busybox --list); do
    [[ $applet == busybox ]] && continue
    ln -sf busybox "$root/usr/bin/$applet"
  done
  copy_with_libs "$root" /usr/bin/grub-editenv /usr/sbin/mke2fs /usr/sbin/tune2fs /usr/sbin/e2fsck \
    /usr/sbin/blkid
  ln -sf mke2fs "$root/usr/sbin/mkfs.ext4"
  ln -sf e2fsck "$root/usr/sbin/fsck.ext4"
  cp /etc/mke2fs.conf "$root/etc/mke2fs.conf"
  mkdir -p "$root/usr/local/bin"
  copy_with_libs "$root" "$(readlink -f "$OTACLIENT")" "$(readlink -f "$OTACTL")"
  install -m 0755 "$OTACLIENT" "$root/usr/local/bin/otaclient"
  install -m 0755 "$OTACTL" "$root/usr/local/bin/otactl"
  strip --strip-debug "$root/usr/local/bin/otaclient" "$root/usr/local/bin/otactl"
  rm -f "$root$(readlink -f "$OTACLIENT")" "$root$(readlink -f "$OTACTL")"
  install -m 0755 "$VM_DIR/guest-init.sh" "$root/usr/sbin/init"
  ln -s usr/sbin/init "$root/init"
  # As on Debian: the versioned kernel and initramfs plus vmlinuz/initrd.img symlinks (OTA images
  # leave the symlinks out).
  cp "$VM_KERNEL" "$root/boot/vmlinuz-$(vm_kernel_version)"
  ln -s "vmlinuz-$(vm_kernel_version)" "$root/boot/vmlinuz"
  make_initramfs "$root/boot/initrd.img-$(vm_kernel_version)"
  ln -s "initrd.img-$(vm_kernel_version)" "$root/boot/initrd.img"
  cp -r "$E2E_WORK/pki/certs" "$root/opt/ota/client/certs"
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
  printf 'root:x:0:\n' >"$root/etc/group"
  echo vm-guest >"$root/etc/hostname"
  : >"$root/etc/fstab"
  printf '%s\n' "${OTA_VM_OTACLIENT_ARGS:-}" >"$root/etc/vm/otaclient.args"
}

# stage_image NAME [broken|unhealthy]: $E2E_WORK/rootfs/NAME from the base tree, tagged with its
# name; a broken image's init dies at once (kernel panic, then panic=N resets the machine); an
# unhealthy one runs otaclient with a health check that fails.
stage_image() {
  local name=$1 root=$E2E_WORK/rootfs/$1
  mkdir -p "$E2E_WORK/rootfs"
  cp -a "$E2E_WORK/rootfs/base" "$root"
  echo "$name" >"$root/etc/vm-image"
  if [[ "${2:-}" == broken ]]; then
    printf '#!/bin/sh\n' >"$root/etc/vm/broken"
    chmod +x "$root/etc/vm/broken"
  fi
  if [[ "${2:-}" == unhealthy ]]; then
    # Boots fine, but its health check (health-gated commit) fails: once the guest's init has
    # printed the first Status (UPDATING while the check runs), it lets the check go on.
    cat >"$root/etc/vm/health-check" <<'CHECK'
#!/bin/sh
while [ ! -e /run/vm-health-go ]; do sleep 0.1; done
echo "checking app.service" && echo "app.service did not start" >&2
exit 3
CHECK
    chmod 0755 "$root/etc/vm/health-check"
    printf '%s --health-check-command /etc/vm/health-check --health-check-timeout 120\n' \
      "${OTA_VM_OTACLIENT_ARGS:-}" >"$root/etc/vm/otaclient.args"
  fi
}

# attach_loop IMAGE: sets LOOP to a loop device of IMAGE with its partitions registered (partx -a:
# this kernel's loop driver creates no partition nodes by itself).
attach_loop() {
  local loop
  loop=$(losetup -f --show -P "$1") || fail "losetup $1"
  VM_LOOPS+=("$loop")
  if [[ ! -e "${loop}p1" ]]; then
    partx -a "$loop" >/dev/null 2>&1 || true
  fi
  for _ in $(seq 1 50); do
    [[ -e "${loop}p1" ]] && break
    sleep 0.1
  done
  [[ -e "${loop}p1" ]] || fail "no partition nodes for $loop"
  LOOP=$loop
}
detach_loop() {
  partx -d "$1" >/dev/null 2>&1 || true
  losetup -d "$1"
  local kept=() l
  for l in "${VM_LOOPS[@]}"; do [[ $l == "$1" ]] || kept+=("$l"); done
  VM_LOOPS=("${kept[@]}")
}
vm_mount() {  # vm_mount DEV DIR [mount options]
  mkdir -p "$2"
  mount ${3:+-o "$3"} "$1" "$2" || fail "mount $1 $2"
  VM_MOUNTS+=("$2")
}
vm_umount() {
  umount "$1" || fail "umount $1"
  unset 'VM_MOUNTS[${#VM_MOUNTS[@]}-1]'
}

# Kernel arguments of this machine beyond root/console/panic: the hung-task detector reports a
# task blocked for 20 s (default 120 s), once, so that a guest whose disk stalls says so on the
# console before boot_vm's watchdog ends a silent boot (OTA_VM_STALL_SECONDS). They are part of the
# machine's command line, so otaclient's generated GRUB menu carries them to both slots like any
# other argument of the running kernel (expect_managed_grub checks that).
VM_MACHINE_ARGS="sysctl.kernel.hung_task_timeout_secs=20 sysctl.kernel.hung_task_warnings=1"

# The boot configuration of an unmanaged machine: what a distro install leaves, booting slot A
# (its kernel lives in the rootfs's /boot). otaclient's GRUB backend takes over from here.
write_plain_grub_cfg() {
  cat >"$1" <<CFG
# Plain distro-style configuration: one entry, slot A. Not managed by otaclient (yet).
serial --unit=0 --speed=115200
terminal_input serial
terminal_output serial
set timeout=0
set default=0
menuentry 'Debian GNU/Linux (slot A)' {
  insmod part_gpt
  insmod ext2
  search --no-floppy --set=root --fs-uuid $(blkid -s UUID -o value "$2")
  linux /boot/vmlinuz-$(vm_kernel_version) root=PARTUUID=$PARTUUID_A rootfstype=ext4 rw console=ttyS0,115200 panic=5 $VM_MACHINE_ARGS
  initrd /boot/initrd.img-$(vm_kernel_version)
}
CFG
}

# make_system_disk ROOTFS_A_NAME: $E2E_WORK/disk.img, 1 GiB sparse GPT with /boot (ext4, label
# boot: GRUB, grubenv, /boot/ota configs), slot A (ext4 made from the staged tree) and slot B (empty
# ext4), numbered as VM_FIRMWARE says. bios: p4 bios_grub, GRUB installed with grub-install.
# uefi: p1 ESP (vfat) with GRUB built by grub-mkimage as EFI/BOOT/BOOTX64.EFI (the path firmware
# boots without NVRAM entries; written with mtools, the host needs no vfat driver), which finds
# /boot by its UUID and reads grub/grub.cfg and grub/x86_64-efi/ modules there, as an installed
# GRUB does.
make_system_disk() {
  local disk=$E2E_WORK/disk.img loop mnt=$E2E_WORK/mnt/boot
  rm -f "$disk"
  truncate -s 1G "$disk"
  local layout
  if [[ $VM_FIRMWARE == uefi ]]; then
    layout=(-n 1:2048:+32M -t 1:EF00 -c 1:esp -u "1:$PARTUUID_ESP")
  else
    layout=(-n 4:2048:+1M -t 4:EF02 -c 4:bios_grub)
  fi
  sgdisk -U "$DISK_GUID" "${layout[@]}" \
    -n "$VM_P_BOOT:0:+64M" -t "$VM_P_BOOT:8300" -c "$VM_P_BOOT:boot" -u "$VM_P_BOOT:$PARTUUID_BOOT" \
    -n "$VM_P_A:0:+420M" -t "$VM_P_A:8300" -c "$VM_P_A:rootfs_a" -u "$VM_P_A:$PARTUUID_A" \
    -n "$VM_P_B:0:+420M" -t "$VM_P_B:8300" -c "$VM_P_B:rootfs_b" -u "$VM_P_B:$PARTUUID_B" \
    "$disk" >"$E2E_WORK/sgdisk.log" 2>&1 ||
    { cat "$E2E_WORK/sgdisk.log" >&2; fail "sgdisk"; }
  attach_loop "$disk"
  loop=$LOOP
  mkfs.ext4 -q -L boot "${loop}p$VM_P_BOOT" || fail "mkfs /boot"
  mkfs.ext4 -q -L rootfs_a -d "$E2E_WORK/rootfs/$1" "${loop}p$VM_P_A" || fail "mkfs slot A"
  mkfs.ext4 -q -L rootfs_b "${loop}p$VM_P_B" || fail "mkfs slot B"
  vm_mount "${loop}p$VM_P_BOOT" "$mnt"
  if [[ $VM_FIRMWARE == uefi ]]; then
    install_efi_grub "${loop}p1" "${loop}p$VM_P_BOOT" "$mnt"
  else
    # grub-probe asks udev for a partition's sysfs path; udev is not installed on this host.
    mkdir -p "$E2E_WORK/shim"
    install -m 0755 "$VM_DIR/udevadm-shim.sh" "$E2E_WORK/shim/udevadm"
    PATH=$E2E_WORK/shim:$PATH "$GRUB2_COMMON/usr/sbin/grub-install" --target=i386-pc \
      --boot-directory="$mnt" --modules="part_gpt ext2 search_fs_uuid" \
      --no-floppy "$loop" >"$E2E_WORK/grub-install.log" 2>&1 ||
      { cat "$E2E_WORK/grub-install.log" >&2; fail "grub-install"; }
  fi
  write_plain_grub_cfg "$mnt/grub/grub.cfg" "${loop}p$VM_P_A"
  [[ -f "$mnt/grub/grubenv" ]] || grub-editenv "$mnt/grub/grubenv" create
  mkdir -p "$mnt/ota"
  cat >"$mnt/ota/ecu_info.yaml" <<YML
format_version: 1
ecu_id: "vm"
ip_addr: "127.0.0.1"
bootloader: grub
YML
  printf 'enable_local_ota_proxy: false\n' >"$mnt/ota/proxy_info.yaml"
  sync
  vm_umount "$mnt"
  detach_loop "$loop"
  check_system_disk
}

# install_efi_grub ESP_DEV BOOT_DEV BOOT_MNT: GRUB for x86_64-efi on the ESP (vfat, removable-media
# path), its modules and prefix on /boot.
install_efi_grub() {
  local esp=$1 boot_uuid
  boot_uuid=$(blkid -s UUID -o value "$2") || fail "no UUID on $2"
  mkfs.vfat -n ESP "$esp" >"$E2E_WORK/mkfs-esp.log" 2>&1 ||
    { cat "$E2E_WORK/mkfs-esp.log" >&2; fail "mkfs.vfat ESP"; }
  mkdir -p "$3/grub/x86_64-efi"
  cp /usr/lib/grub/x86_64-efi/*.mod /usr/lib/grub/x86_64-efi/*.lst "$3/grub/x86_64-efi/"
  cat >"$E2E_WORK/efi-early.cfg" <<CFG
search --no-floppy --fs-uuid --set=root $boot_uuid
set prefix=(\$root)/grub
CFG
  grub-mkimage -O x86_64-efi -o "$E2E_WORK/BOOTX64.EFI" -c "$E2E_WORK/efi-early.cfg" -p /grub \
    part_gpt ext2 fat search search_fs_uuid normal configfile linux echo test loadenv serial \
    terminal >"$E2E_WORK/grub-mkimage.log" 2>&1 ||
    { cat "$E2E_WORK/grub-mkimage.log" >&2; fail "grub-mkimage"; }
  # (mtools complain on stderr that a partition node has no floppy geometry: logged, not shown.)
  { mmd -i "$esp" ::/EFI ::/EFI/BOOT && mcopy -i "$esp" "$E2E_WORK/BOOTX64.EFI" \
    ::/EFI/BOOT/BOOTX64.EFI; } >"$E2E_WORK/mtools.log" 2>&1 ||
    { cat "$E2E_WORK/mtools.log" >&2; fail "writing EFI/BOOT/BOOTX64.EFI onto the ESP"; }
}

# check_system_disk: GRUB's own file system code reads the image like the guest's GRUB will
# (catches an image GRUB cannot read before we spend a boot on it).
check_system_disk() {
  local disk=$E2E_WORK/disk.img
  grub-fstest "$disk" cat "(loop0,gpt$VM_P_BOOT)/grub/grub.cfg" >"$E2E_WORK/fstest-cfg.txt" 2>&1 ||
    { cat "$E2E_WORK/fstest-cfg.txt" >&2; fail "grub-fstest cannot read /grub/grub.cfg"; }
  grep -q menuentry "$E2E_WORK/fstest-cfg.txt" || fail "grub.cfg on the image has no menuentry"
  grub-fstest "$disk" ls "(loop0,gpt$VM_P_A)/boot/" >"$E2E_WORK/fstest-boot.txt" 2>&1 || true
  grep -q vmlinuz "$E2E_WORK/fstest-boot.txt" || fail "grub-fstest finds no /boot/vmlinuz in slot A"
  grep -q initrd.img "$E2E_WORK/fstest-boot.txt" ||
    fail "grub-fstest finds no /boot/initrd.img in slot A"
  [[ -s "$(dirname "$disk")/disk.img" ]] || fail "no disk image"
}

# make_data_disk: the OTA images ($E2E_WORK/www) on an ext4 disk the guest mounts read-only.
make_data_disk() {
  local size
  size=$(du -sm "$E2E_WORK/www" | cut -f1)
  rm -f "$E2E_WORK/data.img"
  truncate -s $((size * 13 / 10 + 32))M "$E2E_WORK/data.img"
  mkfs.ext4 -q -L otadata -d "$E2E_WORK/www" "$E2E_WORK/data.img" || fail "mkfs data disk"
}

# write_request TEXT: the request disk for the next boot (the guest's init runs it: "none",
# "update VERSION IMAGE", "rollback", "await-reboot").
write_request() {
  rm -rf "$E2E_WORK/request" "$E2E_WORK/request.img"
  mkdir -p "$E2E_WORK/request"
  echo "$1" >"$E2E_WORK/request/request"
  truncate -s 4M "$E2E_WORK/request.img"
  mkfs.ext4 -q -L otareq -d "$E2E_WORK/request" "$E2E_WORK/request.img" || fail "mkfs request disk"
}

# qemu_cpu_ticks PID: the CPU time (user + system, clock ticks) process PID has used so far.
qemu_cpu_ticks() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  # Fields after "(comm) ": state is the 1st, utime the 12th, stime the 13th.
  awk '{ print $12 + $13 }' <<<"${stat##*) }"
}

# Kernel console lines that say the guest's storage stalled or failed: hung tasks (reported after
# 20 s: VM_MACHINE_ARGS), I/O errors, ext4/jbd2 giving up. (virtio-blk has no request timeouts.)
VM_DISK_STALL_RE='^\[ *[0-9]+\.[0-9]+\] .*(blocked for more than|I/O error|EXT4-fs error|'
VM_DISK_STALL_RE+='Aborting journal|Detected aborted journal)'

# vm_last_line BYTES: the last non-blank line of the console's first BYTES, without terminal
# escapes (GRUB's), cut to 100 columns.
vm_last_line() {
  { head -c "$1" "$VM_LOG" | tr -d '\r' | sed 's/\x1b\[[0-9;]*[A-Za-z]//g' |
    grep -v '^[[:space:]]*$' || true; } | tail -1 | cut -c1-100
}

# boot_vm NAME REQUEST [POWER_CUT_REGEX]: one boot of the machine, until the guest powers off or
# reboots (-no-reboot: a guest reboot ends qemu; the next boot_vm is the next boot). With
# POWER_CUT_REGEX, qemu is killed (SIGKILL: a power cut) as soon as the console shows it.
# A guest whose console shows nothing new for OTA_VM_STALL_SECONDS (default 60) is killed at once
# and the boot fails with a diagnosis (vm_stall_fail); every stretch of a working boot is far
# shorter (the guest prints each change of the update's Status, phase or counters), and the
# longest one is logged. The per-boot limit OTA_VM_BOOT_TIMEOUT (420 s) stays as a backstop.
# Sets VM_LOG (this boot's console log).
boot_vm() {
  local name=$1 request=$2 cut=${3:-} limit=${OTA_VM_BOOT_TIMEOUT:-420}
  local stall=${OTA_VM_STALL_SECONDS:-60}
  VM_BOOTS=$((VM_BOOTS + 1))
  VM_BOOT_NAME=$name
  VM_REQUEST=$request
  VM_LOG=$E2E_WORK/console-$(printf '%02d' "$VM_BOOTS")-$name.log
  write_request "$request"
  # +rdrand: the guest kernel seeds its RNG at once (else gRPC waits ~20 s for crng init).
  local accel=(-accel tcg -cpu "qemu64,+rdrand")
  [[ "${OTA_VM_KVM:-0}" == 1 ]] && accel=(-accel kvm -cpu host)
  local pidfile=$E2E_WORK/qemu.pid
  rm -f "$pidfile"
  : >"$VM_LOG"
  VM_QEMU_PIDFILES+=("$pidfile")
  log "boot $VM_BOOTS ($name): request '$request'"
  # virtio-blk disks (SeaBIOS boots the system disk by its bootindex; the guest's initramfs loads
  # virtio_blk). cache=unsafe: the guest's flushes do not wait for the host's writeback; guest
  # writes still reach the image file at once, so killing qemu remains a power cut.
  local firmware=()
  if [[ $VM_FIRMWARE == uefi ]]; then
    # OVMF: its code read-only, the machine's variable store a copy made once per machine.
    [[ -f $E2E_WORK/OVMF_VARS.fd ]] || cp "$OVMF_VARS" "$E2E_WORK/OVMF_VARS.fd"
    firmware=(-drive "if=pflash,format=raw,unit=0,readonly=on,file=$OVMF_CODE"
      -drive "if=pflash,format=raw,unit=1,file=$E2E_WORK/OVMF_VARS.fd")
  fi
  timeout -k 5 "$limit" qemu-system-x86_64 "${accel[@]}" "${firmware[@]}" -m 512 -smp 1 -no-reboot \
    -display none -monitor none -serial "file:$VM_LOG" -nic none -pidfile "$pidfile" \
    -drive "file=$E2E_WORK/disk.img,if=none,id=sys,format=raw,cache=unsafe" \
    -device virtio-blk-pci,drive=sys,serial=sys,bootindex=0 \
    -drive "file=$E2E_WORK/data.img,if=none,id=data,format=raw,readonly=on" \
    -device virtio-blk-pci,drive=data,serial=data \
    -drive "file=$E2E_WORK/request.img,if=none,id=req,format=raw,readonly=on" \
    -device virtio-blk-pci,drive=req,serial=req \
    </dev/null >"$VM_LOG.qemu" 2>&1 &
  local runner=$!
  local started=$SECONDS size last_size=0 quiet_since=$SECONDS longest=0 qpid="" ticks0=""
  local cut_done="" stalled="" longest_after=""
  while kill -0 "$runner" 2>/dev/null; do
    [[ -n "$qpid" ]] || qpid=$(cat "$pidfile" 2>/dev/null) || true
    size=$(stat -c %s "$VM_LOG")
    if ((size != last_size)); then
      if ((SECONDS - quiet_since > longest)); then
        longest=$((SECONDS - quiet_since))
        longest_after=$(vm_last_line "$last_size")
      fi
      last_size=$size
      quiet_since=$SECONDS
      ticks0=""
    fi
    # The CPU time qemu had when the console went quiet (first sample after the last output).
    [[ -n "$ticks0" || -z "$qpid" ]] || ticks0=$(qemu_cpu_ticks "$qpid") || ticks0=""
    if [[ -n "$cut" ]] && grep -qE "$cut" "$VM_LOG"; then
      log "power cut: console shows /$cut/, killing qemu (pid $qpid)"
      kill -KILL "$qpid"
      cut_done=1
      break
    fi
    if ((SECONDS - quiet_since >= stall)); then
      stalled=$(vm_stall_diagnosis "$qpid" "$ticks0" $((SECONDS - quiet_since)))
      kill -KILL "$qpid" 2>/dev/null || true
      break
    fi
    sleep 0.1
  done
  local rc=0
  wait "$runner" || rc=$?
  if ((SECONDS - quiet_since > longest)); then
    longest=$((SECONDS - quiet_since))
    longest_after="(the end)"
  fi
  tr -d '\r' <"$VM_LOG" >"$VM_LOG.tmp" && mv "$VM_LOG.tmp" "$VM_LOG"
  log "boot $VM_BOOTS ($name): qemu ended (rc $rc) after $((SECONDS - started)) s;" \
    "longest console silence ${longest} s, after: $longest_after"
  [[ -z "$stalled" ]] || vm_stall_fail "$stalled"
  if ((rc == 124 || rc == 137)) && [[ -z "$cut_done" ]]; then
    vm_fail "qemu did not finish within ${limit}s"
  fi
  [[ -z "$cut" ]] || [[ -n "$cut_done" ]] || vm_fail "the console never showed /$cut/"
}

# vm_stall_diagnosis QEMU_PID TICKS_WHEN_QUIET SECONDS: one line on why the console went quiet,
# from qemu's CPU use over the silent window: an idle qemu has a wedged guest (waiting for an
# I/O that never completes, or halted), a busy one a guest that is slow or spinning.
vm_stall_diagnosis() {
  local pid=$1 ticks0=$2 secs=$3 ticks1 hz pct
  hz=$(getconf CLK_TCK)
  if [[ -n "$pid" && -n "$ticks0" ]] && ticks1=$(qemu_cpu_ticks "$pid"); then
    pct=$(((ticks1 - ticks0) * 100 / hz / secs))
    if ((pct < 20)); then
      echo "qemu used ${pct}% of a CPU while the console was silent: the guest is wedged, not slow"
    else
      echo "qemu used ${pct}% of a CPU while the console was silent: the guest is busy (slow or" \
        "spinning), not waiting on a device"
    fi
  else
    echo "qemu's CPU use over the silent window is unknown (pid '$pid')"
  fi
}

# vm_stall_fail DIAGNOSIS: the watchdog's failure: which boot, whether the console shows a disk
# stall, qemu's CPU use, the last console lines.
vm_stall_fail() {
  local disk
  echo "--- last 40 console lines of boot $VM_BOOTS ($VM_LOG)" >&2
  tail -40 "$VM_LOG" >&2
  [[ -s "$VM_LOG.qemu" ]] && { echo "--- qemu stderr" >&2; cat "$VM_LOG.qemu" >&2; }
  disk=$({ grep -E "$VM_DISK_STALL_RE" "$VM_LOG" || true; } | head -3 | tr '\n' ' ')
  if [[ -n "$disk" ]]; then
    disk="the console shows a disk stall: $disk"
  else
    disk="the console shows no disk stall (no hung task, I/O error or timeout lines)"
  fi
  log "boot $VM_BOOTS ($VM_BOOT_NAME, request '$VM_REQUEST'): $1"
  log "boot $VM_BOOTS: $disk"
  fail "boot $VM_BOOTS ($VM_BOOT_NAME, request '$VM_REQUEST'): no console output for" \
    "${OTA_VM_STALL_SECONDS:-60} s, qemu killed; $1; $disk"
}

# vm_fail MESSAGE: fails with the current boot's console log attached, and says so when the
# guest's storage itself stalled (hung tasks, I/O errors, timeouts): then the machine, not
# otaclient, stopped.
vm_fail() {
  local stalled=""
  if [[ -n "${VM_LOG:-}" && -f "$VM_LOG" ]]; then
    echo "--- console log of boot $VM_BOOTS ($VM_LOG)" >&2
    tail -150 "$VM_LOG" >&2
    [[ -s "$VM_LOG.qemu" ]] && { echo "--- qemu stderr" >&2; cat "$VM_LOG.qemu" >&2; }
    stalled=$({ grep -E "$VM_DISK_STALL_RE" "$VM_LOG" || true; } | head -3 | tr '\n' ' ')
  fi
  [[ -z "$stalled" ]] || log "the guest's emulated disk stalled during this boot: $stalled"
  fail "$*"
}

# expect_marker REGEX [DESCRIPTION]: the current boot's console has a "VMTEST ..." line matching.
expect_marker() {
  grep -qE "^VMTEST $1" "$VM_LOG" || vm_fail "missing console marker /VMTEST $1/ ${2:-}"
}
# marker_value REGEX: the last console marker line matching, without "VMTEST ".
marker_line() { grep -E "^VMTEST $1" "$VM_LOG" | tail -1 | sed 's/^VMTEST //'; }

# booted_slot: the slot of the current boot's first "boot" marker (a or b).
booted_slot() { grep -m1 -oE '^VMTEST boot slot=[a-z]+' "$VM_LOG" | sed 's/.*slot=//'; }

# last_status [first]: the last (or first: the one printed before the request ran) Status the
# guest printed this boot (ecu "vm" of ecu_v2).
last_status() {
  local pick=(tail -1)
  [[ "${1:-}" == first ]] && pick=(head -1)
  grep -E '^VMTEST status \{' "$VM_LOG" | "${pick[@]}" | sed 's/^VMTEST status //' |
    jq -c '(.ecu_v2 // [])[] | select(.ecu_id == "vm")' 2>/dev/null
}
status_of_vm() {  # status_of_vm JQ_FIELD [first]
  local s
  s=$(last_status "${2:-}")
  [[ -n "$s" ]] || vm_fail "no parsable Status line on the console"
  jq -r "$1" <<<"$s"
}

# expect_boot SLOT: this boot came up on SLOT (a/b).
expect_boot() {
  expect_marker "boot slot=" "(the kernel never started our init)"
  local got
  got=$(booted_slot)
  [[ "$got" == "$1" ]] || vm_fail "booted slot $got, expected slot $1"
}
