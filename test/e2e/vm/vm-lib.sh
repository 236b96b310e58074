# Host side of the real-boot VM test (source it after test/e2e/lib.sh; needs bash and root).
# Builds guest root filesystems from busybox, the Debian cloud kernel and our own binaries, a GPT
# disk image with BIOS GRUB + /boot + rootfs A/B, data and request disks, and boots it under qemu
# (TCG) once per call, with the serial console in a log file. Every loop device, mount and qemu
# process is recorded and released by vm_cleanup (installed as the EXIT trap by vm_init).
#
# Facts behind the recipe (TCG, NVMe, partx -a, grub-install from an unpacked grub2-common with a
# udevadm stand-in): ../shared/reference/vm-boot.md.

VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${OTA_VM_CACHE:=/var/cache/ota-vm-debs}"
GRUB2_COMMON=$OTA_VM_CACHE/grub2-common
VM_KERNEL=$OTA_VM_CACHE/kernel/vmlinuz

# Fixed GPT identities of the system disk (p4 bios_grub first, then /boot, slot A, slot B).
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
    jq timeout ldd strip; do
    command -v "$tool" >/dev/null || vm_skip "$tool not installed (deploy/install-deps.sh)"
  done
  [[ -d /usr/lib/grub/i386-pc ]] || vm_skip "grub-pc-bin (i386-pc modules) not installed"
  [[ -f "$VM_KERNEL" && -f "$OTA_VM_CACHE/kernel/package" && -x "$GRUB2_COMMON/usr/sbin/grub-install" ]] ||
    vm_skip "run deploy/fetch-vm-debs.sh (cloud kernel + grub2-common cache $OTA_VM_CACHE missing)"
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

# stage_base_rootfs DIR: the guest root filesystem every image starts from (usr-merged like
# Debian 12): busybox, the cloud kernel in /boot (each slot boots its own kernel), our init,
# otaclient + otactl, the tools the GRUB backend runs (grub-editenv, mkfs.ext4, blkid), the CA
# group otaclient trusts, users/groups.
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
  # As on Debian: the versioned kernel plus a vmlinuz symlink (OTA images leave the symlink out).
  cp "$VM_KERNEL" "$root/boot/vmlinuz-$(vm_kernel_version)"
  ln -s "vmlinuz-$(vm_kernel_version)" "$root/boot/vmlinuz"
  cp -r "$E2E_WORK/pki/certs" "$root/opt/ota/client/certs"
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
  printf 'root:x:0:\n' >"$root/etc/group"
  echo vm-guest >"$root/etc/hostname"
  : >"$root/etc/fstab"
  printf '%s\n' "${OTA_VM_OTACLIENT_ARGS:-}" >"$root/etc/vm/otaclient.args"
}

# stage_image NAME [broken]: $E2E_WORK/rootfs/NAME from the base tree, tagged with its name; a
# broken image's init dies at once (kernel panic, then panic=N resets the machine).
stage_image() {
  local name=$1 root=$E2E_WORK/rootfs/$1
  mkdir -p "$E2E_WORK/rootfs"
  cp -a "$E2E_WORK/rootfs/base" "$root"
  echo "$name" >"$root/etc/vm-image"
  if [[ "${2:-}" == broken ]]; then
    printf '#!/bin/sh\n' >"$root/etc/vm/broken"
    chmod +x "$root/etc/vm/broken"
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

# Kernel arguments of this machine: NVMe timeouts far beyond a boot's limit. Under TCG on a busy
# 2-core host one I/O can outlast the default 30 s; the driver then aborts and resets the
# controller. Most likely (from the code; forced resets alone did not reproduce it) Linux 6.1
# re-sends the shadow-doorbell config only after restarting its queues (changed upstream in
# 06c59d427017, not in Debian 12's kernel) while qemu 7.2 disables the shadow doorbells on reset,
# so later submissions are never seen and the guest's I/O stalls for good (jbd2 hung-task
# reports, seen on CI). With no timeout there is no reset. They are part of the
# machine's command line, so otaclient's generated GRUB menu carries them to both slots like any
# other argument of the running kernel.
VM_NVME_ARGS="nvme_core.io_timeout=600 nvme_core.admin_timeout=600"

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
  linux /boot/vmlinuz-$(vm_kernel_version) root=PARTUUID=$PARTUUID_A rootfstype=ext4 rw console=ttyS0,115200 panic=5 $VM_NVME_ARGS
}
CFG
}

# make_system_disk ROOTFS_A_NAME: $E2E_WORK/disk.img, 1 GiB sparse GPT: p4 bios_grub (first),
# p1 /boot (ext4, label boot: GRUB, grubenv, /boot/ota configs), p2 slot A (ext4 made from the
# staged tree), p3 slot B (empty ext4). GRUB installed for BIOS with grub-install.
make_system_disk() {
  local disk=$E2E_WORK/disk.img loop mnt=$E2E_WORK/mnt/boot
  rm -f "$disk"
  truncate -s 1G "$disk"
  sgdisk -U "$DISK_GUID" \
    -n 4:2048:+1M -t 4:EF02 -c 4:bios_grub \
    -n 1:0:+64M -t 1:8300 -c 1:boot -u "1:$PARTUUID_BOOT" \
    -n 2:0:+420M -t 2:8300 -c 2:rootfs_a -u "2:$PARTUUID_A" \
    -n 3:0:+420M -t 3:8300 -c 3:rootfs_b -u "3:$PARTUUID_B" "$disk" >"$E2E_WORK/sgdisk.log" 2>&1 ||
    { cat "$E2E_WORK/sgdisk.log" >&2; fail "sgdisk"; }
  attach_loop "$disk"
  loop=$LOOP
  mkfs.ext4 -q -L boot "${loop}p1" || fail "mkfs /boot"
  mkfs.ext4 -q -L rootfs_a -d "$E2E_WORK/rootfs/$1" "${loop}p2" || fail "mkfs slot A"
  mkfs.ext4 -q -L rootfs_b "${loop}p3" || fail "mkfs slot B"
  vm_mount "${loop}p1" "$mnt"
  # grub-probe asks udev for a partition's sysfs path; udev is not installed on this host.
  mkdir -p "$E2E_WORK/shim"
  install -m 0755 "$VM_DIR/udevadm-shim.sh" "$E2E_WORK/shim/udevadm"
  PATH=$E2E_WORK/shim:$PATH "$GRUB2_COMMON/usr/sbin/grub-install" --target=i386-pc \
    --boot-directory="$mnt" --modules="part_gpt ext2 search_fs_uuid" \
    --no-floppy "$loop" >"$E2E_WORK/grub-install.log" 2>&1 ||
    { cat "$E2E_WORK/grub-install.log" >&2; fail "grub-install"; }
  write_plain_grub_cfg "$mnt/grub/grub.cfg" "${loop}p2"
  [[ -f "$mnt/grub/grubenv" ]] || grub-editenv "$mnt/grub/grubenv" create
  mkdir -p "$mnt/ota"
  cat >"$mnt/ota/ecu_info.yml" <<YML
format_version: 1
ecu_id: "vm"
ip_addr: "127.0.0.1"
bootloader: grub
YML
  printf 'enable_local_ota_proxy: false\n' >"$mnt/ota/proxy_info.yml"
  sync
  vm_umount "$mnt"
  detach_loop "$loop"
  check_system_disk
}

# check_system_disk: GRUB's own file system code reads the image like the guest's GRUB will
# (catches an image GRUB cannot read before we spend a boot on it).
check_system_disk() {
  local disk=$E2E_WORK/disk.img
  grub-fstest "$disk" cat '(loop0,gpt1)/grub/grub.cfg' >"$E2E_WORK/fstest-cfg.txt" 2>&1 ||
    { cat "$E2E_WORK/fstest-cfg.txt" >&2; fail "grub-fstest cannot read /grub/grub.cfg"; }
  grep -q menuentry "$E2E_WORK/fstest-cfg.txt" || fail "grub.cfg on the image has no menuentry"
  grub-fstest "$disk" ls '(loop0,gpt2)/boot/' 2>&1 | grep -q vmlinuz ||
    fail "grub-fstest finds no /boot/vmlinuz in slot A"
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
# "update VERSION IMAGE", "rollback").
write_request() {
  rm -rf "$E2E_WORK/request" "$E2E_WORK/request.img"
  mkdir -p "$E2E_WORK/request"
  echo "$1" >"$E2E_WORK/request/request"
  truncate -s 4M "$E2E_WORK/request.img"
  mkfs.ext4 -q -L otareq -d "$E2E_WORK/request" "$E2E_WORK/request.img" || fail "mkfs request disk"
}

# boot_vm NAME REQUEST [POWER_CUT_REGEX]: one boot of the machine, until the guest powers off or
# reboots (-no-reboot: a guest reboot ends qemu; the next boot_vm is the next boot). With
# POWER_CUT_REGEX, qemu is killed (SIGKILL: a power cut) as soon as the console shows it.
# Sets VM_LOG (this boot's console log).
boot_vm() {
  local name=$1 request=$2 cut=${3:-} limit=${OTA_VM_BOOT_TIMEOUT:-420}
  VM_BOOTS=$((VM_BOOTS + 1))
  VM_LOG=$E2E_WORK/console-$(printf '%02d' "$VM_BOOTS")-$name.log
  write_request "$request"
  # +rdrand: the guest kernel seeds its RNG at once (else gRPC waits ~20 s for crng init).
  local accel=(-accel tcg -cpu "qemu64,+rdrand")
  [[ "${OTA_VM_KVM:-0}" == 1 ]] && accel=(-accel kvm -cpu host)
  local pidfile=$E2E_WORK/qemu.pid
  rm -f "$pidfile"
  VM_QEMU_PIDFILES+=("$pidfile")
  log "boot $VM_BOOTS ($name): request '$request'"
  # cache=unsafe: the guest's flushes do not wait for the host's writeback (a busy CI host made
  # them outlast the guest's NVMe timeout); guest writes still reach the image file at once, so
  # killing qemu remains a power cut.
  timeout -k 5 "$limit" qemu-system-x86_64 "${accel[@]}" -m 512 -smp 1 -no-reboot \
    -display none -monitor none -serial "file:$VM_LOG" -nic none -pidfile "$pidfile" \
    -drive "file=$E2E_WORK/disk.img,if=none,id=sys,format=raw,cache=unsafe" \
    -device nvme,drive=sys,serial=sys,bootindex=0 \
    -drive "file=$E2E_WORK/data.img,if=none,id=data,format=raw,readonly=on" \
    -device nvme,drive=data,serial=data \
    -drive "file=$E2E_WORK/request.img,if=none,id=req,format=raw,readonly=on" \
    -device nvme,drive=req,serial=req \
    </dev/null >"$VM_LOG.qemu" 2>&1 &
  local runner=$!
  local started=$SECONDS
  if [[ -n "$cut" ]]; then
    while kill -0 "$runner" 2>/dev/null; do
      if grep -qE "$cut" "$VM_LOG" 2>/dev/null; then
        local qpid
        qpid=$(cat "$pidfile")
        log "power cut: console shows /$cut/, killing qemu (pid $qpid)"
        kill -KILL "$qpid"
        break
      fi
      sleep 0.1
    done
  fi
  local rc=0
  wait "$runner" || rc=$?
  tr -d '\r' <"$VM_LOG" >"$VM_LOG.tmp" && mv "$VM_LOG.tmp" "$VM_LOG"
  log "boot $VM_BOOTS ($name): qemu ended (rc $rc) after $((SECONDS - started)) s"
  if ((rc == 124 || rc == 137)) && [[ -z "$cut" ]]; then
    vm_fail "qemu did not finish within ${limit}s"
  fi
  [[ -z "$cut" ]] || grep -qE "$cut" "$VM_LOG" || vm_fail "the console never showed /$cut/"
}

# vm_fail MESSAGE: fails with the current boot's console log attached, and says so when the
# guest's storage itself stalled (emulated NVMe timeouts, hung tasks): then the machine, not
# otaclient, stopped.
vm_fail() {
  local stalled=""
  if [[ -n "${VM_LOG:-}" && -f "$VM_LOG" ]]; then
    echo "--- console log of boot $VM_BOOTS ($VM_LOG)" >&2
    tail -150 "$VM_LOG" >&2
    [[ -s "$VM_LOG.qemu" ]] && { echo "--- qemu stderr" >&2; cat "$VM_LOG.qemu" >&2; }
    stalled=$(grep -E 'nvme[0-9]*: I/O .* timeout|blocked for more than|controller is down' \
      "$VM_LOG" | head -3 | tr '\n' ' ')
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
