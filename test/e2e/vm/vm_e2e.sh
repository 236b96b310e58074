#!/usr/bin/env bash
# Real-boot end to end (issue 6): a qemu machine (TCG, no network) with BIOS GRUB, a /boot partition
# and ext4 rootfs slots A/B on a virtio-blk disk (each slot's kernel boots with an initramfs that
# loads virtio_blk); our otaclient runs inside it as its service would,
# updates the other slot from an OTA image served on the guest's own loopback (busybox httpd over
# a read-only data disk), switches GRUB through the product's GRUB boot controller and reboots.
# One qemu run = one boot (-no-reboot); the harness checks "VMTEST ..." console markers.
#
#   vm_e2e.sh all        the five scenarios in sequence on one machine (1, 5, 2, 3, 4):
#     1 boot A (v1, plain distro grub.cfg) → update to v2 → B boots, confirmed SUCCESS v2 → stays B
#     5 update B → A with an image whose health check fails (--health-check-command): A boots,
#       Status says UPDATING / FINALIZING_UPDATE while the check runs, the check fails, otaclient
#       reboots and GRUB's saved default (never moved) brings back B, which reports FAILURE
#       "health check failed: <reason>" (one extra boot)
#     2 update B → A with a broken image (its init dies: kernel panic, panic=N resets) → GRUB falls
#       back to B, FAILURE with a reason, B unchanged
#     3 power cut (qemu SIGKILL) while the standby is written → the old slot boots, a new update
#       succeeds
#     4 Rollback after a successful update → back on the previous slot, confirmed
#   vm_e2e.sh boot       only builds the machine and boots it once (harness smoke check)
#
# OTA_VM_FIRMWARE=uefi runs the same scenarios on a UEFI machine: OVMF firmware, GRUB for
# x86_64-efi on an EFI system partition, disk ESP + /boot + A + B (vm-lib.sh); needs ovmf,
# grub-efi-amd64-bin, dosfstools and mtools as well.
# Needs root, loop devices, qemu-system-x86, grub-pc-bin, busybox-static and the cache made by
# deploy/fetch-vm-debs.sh; exits 77 with "SKIP: ..." when one is missing. OTA_VM_KVM=1 opts into
# KVM (not usable on the CI machines: ../shared/reference/vm-boot.md). E2E_KEEP=1 keeps the work
# dir (console logs: console-NN-<boot>.log).
set -euo pipefail
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=SCRIPTDIR/vm-lib.sh
source "$(dirname "$0")/vm-lib.sh"

scenario=${1:-all}
vm_init

t0=$SECONDS
make_pki
mkdir -p "$E2E_WORK/rootfs"
stage_base_rootfs "$E2E_WORK/rootfs/base"
stage_image v1
stage_image v2
stage_image v3
stage_image broken broken
stage_image unhealthy unhealthy
# v3 carries 16 MiB of new content that must be downloaded: scenario 3 cuts the power while it is.
mkdir -p "$E2E_WORK/rootfs/v3/usr/share/vm"
head -c 16M /dev/urandom >"$E2E_WORK/rootfs/v3/usr/share/vm/payload.bin"
log "rootfs trees staged in $((SECONDS - t0)) s"
for image in v1 v2 v3 broken unhealthy; do build_image "$image" "$image"; done
log "OTA images built in $((SECONDS - t0)) s"
make_data_disk
make_system_disk v1
log "machine built in $((SECONDS - t0)) s (rootfs $(du -sh "$E2E_WORK/rootfs/v1" | cut -f1))"

# slot_tree SLOT: prints the file tree of rootfs slot SLOT (a/b) as the host sees it with qemu stopped
# (read-only loop mount without journal replay), to prove a slot was not written.
slot_tree() {
  local part=$VM_P_A start loop mnt=$E2E_WORK/mnt/slot
  [[ $1 == b ]] && part=$VM_P_B
  start=$(sgdisk -i "$part" "$E2E_WORK/disk.img" | awk '/First sector/ {print $3}')
  loop=$(losetup -f --show -r -o $((start * 512)) "$E2E_WORK/disk.img") || fail "losetup slot $1"
  VM_LOOPS+=("$loop")
  vm_mount "$loop" "$mnt" ro,noload
  tree_of "$mnt" | grep -vE '^(lost\+found|\.ota-resources)'
  vm_umount "$mnt"
  detach_loop "$loop"
}

# boot_file PATH: a file of the /boot partition as GRUB itself reads it (qemu stopped).
boot_file() { grub-fstest "$E2E_WORK/disk.img" cat "(loop0,gpt$VM_P_BOOT)$1" 2>&1; }
grubenv_vars() { boot_file /grub/grubenv | grep -v '^#' | tr '\n' ' '; }

# expect_managed_grub: /boot holds the configuration our GRUB boot controller generates (both
# slots, by their PARTUUIDs), not the plain distro one the machine was installed with.
expect_managed_grub() {
  boot_file /grub/grub.cfg >"$E2E_WORK/grub.cfg.now"
  ! grep -q "Plain distro-style configuration" "$E2E_WORK/grub.cfg.now" ||
    vm_fail "otaclient did not take over the plain grub.cfg"
  if ! grep -q "$PARTUUID_A" "$E2E_WORK/grub.cfg.now" || ! grep -q "$PARTUUID_B" "$E2E_WORK/grub.cfg.now"; then
    cat "$E2E_WORK/grub.cfg.now" >&2
    vm_fail "generated grub.cfg does not boot both slots"
  fi
  # The running kernel's other arguments are carried into both entries.
  [[ $(grep -c -- "$VM_MACHINE_ARGS" "$E2E_WORK/grub.cfg.now") -ge 2 ]] ||
    vm_fail "generated grub.cfg lost the machine's kernel arguments ($VM_MACHINE_ARGS)"
  # Each slot boots with the initramfs that goes with its kernel (copied beside it).
  if [[ $(grep -cE '^\s*initrd /ota-slots/slot_[ab]/initrd.img$' "$E2E_WORK/grub.cfg.now") != 2 ]]
  then
    cat "$E2E_WORK/grub.cfg.now" >&2
    vm_fail "generated grub.cfg does not boot both slots with their initrd"
  fi
}

# expect_rebooted: this boot ended in a reboot (otaclient's; -no-reboot turns it into qemu's
# exit), not in the init's power-off or a kernel panic.
expect_rebooted() {
  ! grep -q "^VMTEST poweroff" "$VM_LOG" || vm_fail "otaclient did not reboot the machine"
  ! grep -q "Kernel panic" "$VM_LOG" || vm_fail "the kernel panicked instead of rebooting"
}

expect_status() {  # expect_status STATUS [VERSION]
  local got
  got=$(status_of_vm '.ota_status // "INITIALIZED"')
  [[ "$got" == "$1" ]] || vm_fail "otaclient reports $got, expected $1 ($(last_status))"
  if [[ -n "${2:-}" ]]; then
    got=$(status_of_vm '.firmware_version // ""')
    [[ "$got" == "$2" ]] || vm_fail "otaclient reports firmware_version '$got', expected $2"
  fi
}

scenario_boot() {
  boot_vm first-boot none
  expect_boot a
  expect_marker "otaclient-up" "(otaclient never answered Status)"
  expect_marker "poweroff done"
  log "first boot: slot A, otaclient answers: $(last_status)"
}

# The scenarios share one machine and chain their boots: a boot that checks the end of one
# scenario also carries the request that starts the next (the guest prints Status before it runs
# the request), 8 boots in all.

scenario_1_update() {
  log "== scenario 1: update A (v1) → B (v2), try once, confirm, stays on B"
  boot_vm s1-update "update v2 v2"
  expect_boot a
  expect_marker "otaclient-up" "(otaclient never answered Status)"
  expect_marker "update-answer rc=0" "(Update was not accepted)"
  expect_marker "progress status=UPDATING"
  expect_rebooted
  expect_managed_grub
  log "grubenv before the reboot into B: $(grubenv_vars)"
  boot_vm s1-new-slot none
  expect_boot b
  expect_marker "otaclient-up"
  expect_status SUCCESS v2
  expect_marker "poweroff done"
  log "scenario 1: B boots v2 and is confirmed; grubenv now: $(grubenv_vars)"
}

VM_HEALTH_REASON="health check failed: command '/etc/vm/health-check' exit 3: app.service did not start"

scenario_5_health_check() {
  log "== scenario 5: (B stays the default) update B → A with an image whose health check fails"
  boot_vm s1-stays+s5-update "update unhealthy unhealthy"
  expect_boot b
  expect_status SUCCESS v2  # printed before the request ran: scenario 1's "stays on B"
  log "scenario 1 passed: B stays the default after another reboot"
  expect_marker "update-answer rc=0"
  expect_rebooted
  boot_vm s5-check-fails await-reboot
  expect_boot a
  grep -q "image=unhealthy" <(marker_line "boot slot=") || vm_fail "slot A does not run image unhealthy"
  expect_marker "otaclient-up"
  # Read while the check was held: the new slot is not confirmed yet.
  [[ "$(status_of_vm '.ota_status // ""' first)" == UPDATING ]] ||
    vm_fail "during the health check otaclient reports $(last_status first), expected UPDATING"
  [[ "$(status_of_vm '.update_status.phase // ""' first)" == FINALIZING_UPDATE ]] ||
    vm_fail "during the health check the phase is not FINALIZING_UPDATE: $(last_status first)"
  # (The FAILURE Status between the rejection and the reboot lasts milliseconds: the old slot
  # reports it, checked at the next boot.)
  grep -q "new slot rejected: the next boot returns to the old slot" "$VM_LOG" ||
    vm_fail "otaclient did not reject the new slot"
  expect_rebooted
  expect_marker "reboot-requested" "(otaclient did not reboot after the failed health check)"
  log "grubenv after the rejection: $(grubenv_vars)"
}

scenario_2_broken() {
  log "== scenario 2: (back on B after the health check) update B → A with an image whose init dies"
  slot_tree b >"$E2E_WORK/slot-b-before.txt"  # (not in $(...): its loop/mount must be tracked)
  boot_vm s5-back+s2-update "update broken broken"
  expect_boot b
  # Printed before the request ran: scenario 5's end, reported by the old slot.
  expect_status FAILURE v2
  [[ "$(status_of_vm '.failure_reason // ""' first)" == "$VM_HEALTH_REASON" ]] ||
    vm_fail "back on B the reason is \"$(status_of_vm '.failure_reason // ""' first)\""
  log "scenario 5 passed: back on B (v2) by GRUB's saved default, FAILURE \"$VM_HEALTH_REASON\""
  expect_marker "update-answer rc=0"
  expect_rebooted
  boot_vm s2-try-broken none
  expect_boot a
  expect_marker "broken-init exiting"
  ! grep -q "^VMTEST poweroff" "$VM_LOG" || vm_fail "the broken slot powered off cleanly"
  slot_tree b >"$E2E_WORK/slot-b-after.txt"
  diff "$E2E_WORK/slot-b-before.txt" "$E2E_WORK/slot-b-after.txt" >"$E2E_WORK/slot-b.diff" ||
    { head -20 "$E2E_WORK/slot-b.diff" >&2; fail "slot B changed during the failed update"; }
}

scenario_3_power_cut() {
  # From CALCULATING_DELTA on, the standby is formatted/cleaned and being filled (content reused
  # from the active slot is copied into it), so a cut there interrupts the write of the standby.
  log "== scenario 3: (GRUB falls back to B) power cut while the standby (A) is written"
  boot_vm s2-fallback+s3-cut "update v3 v3" \
    'VMTEST progress status=UPDATING phase=(CALCULATING_DELTA|DOWNLOADING_OTA_FILES|APPLYING_UPDATE)'
  expect_boot b
  expect_marker "otaclient-up"
  expect_status FAILURE v2
  local reason
  reason=$(status_of_vm '.failure_reason // ""' first)
  [[ "$reason" == *"did not boot"* ]] ||
    vm_fail "the fallback's reason is \"$reason\", expected the broken slot named as not booting"
  grep -q "image=v2" <(marker_line "boot slot=") || vm_fail "slot B no longer runs image v2"
  log "scenario 2 passed: back on B (v2) by itself, FAILURE \"$reason\", B's files unchanged"
  boot_vm s3-after-cut "update v3 v3"
  expect_boot b
  expect_marker "otaclient-up"
  # Reported as what it was: the standby (A) was cut off while written, never tried.
  [[ "$(status_of_vm '.ota_status // "INITIALIZED"' first)" == FAILURE ]] ||
    vm_fail "after the power cut otaclient reports $(last_status first), expected FAILURE"
  reason=$(status_of_vm '.failure_reason // ""' first)
  [[ "$reason" == *"was interrupted before the boot switch"* ]] ||
    vm_fail "after the power cut the reason is \"$reason\", expected an interrupted update"
  log "after the power cut: slot B, FAILURE \"$reason\""
  expect_marker "update-answer rc=0"
  expect_rebooted
}

scenario_4_rollback() {
  log "== scenario 4: (the retried update reached A) Rollback from A (v3) to B (v2)"
  boot_vm s3-new-slot+s4-rollback rollback
  expect_boot a
  expect_status SUCCESS v3
  grep -q "image=v3" <(marker_line "boot slot=") || vm_fail "slot A does not run image v3"
  log "scenario 3 passed: old slot after the cut, the retried update reached A (v3)"
  expect_marker "rollback-answer rc=0" "(Rollback was not accepted)"
  expect_rebooted
  boot_vm s4-rolled-back none
  expect_boot b
  expect_status SUCCESS v2
  grep -q "image=v2" <(marker_line "boot slot=") || vm_fail "slot B does not run image v2"
  log "scenario 4 passed: rolled back to B (v2), confirmed"
}

case $scenario in
boot) scenario_boot ;;
all)
  scenario_1_update
  scenario_5_health_check
  scenario_2_broken
  scenario_3_power_cut
  scenario_4_rollback
  ;;
*) fail "unknown scenario $scenario (all|boot)" ;;
esac
log "PASS ($VM_BOOTS boots, $((SECONDS - t0)) s)"
