// The Jetson CBoot boot backend (Xavier, BSP < R34): two rootfs partitions selected by
// `nvbootctrl -t rootfs`, each carrying its own /boot (kernel, initrd, extlinux.conf) and its
// own status files in /boot/ota-status/ (status, version, slot_in_use — the Python otaclient's
// format, so either client can finalise the other's update).
//
// Slot numbers are nvbootctrl's: 0 and 1. Rootfs devices by default: slot N → partition N+1 of
// the disk holding the running rootfs (eMMC `mmcblk0pN` or external NVMe `nvme0n1pN`). With an
// external rootfs the boot loader still reads /boot from the eMMC: the standby's /boot is then
// mirrored onto the eMMC partition of the same slot (`mmcblk0p<N+1>`, its /boot directory).
//
// Update flow (every step durable before the next; a crash at any point leaves the standby
// unbootable until the very last step). Step names are what CbootOptions::step_hook sees:
//   PrepareStandby  prepare:1  nvbootctrl set-slot-as-unbootable <standby>
//                   prepare:2  active slot_in_use := standby (a restart on the active slot now
//                              means "the operation did not finish")
//                   prepare:3  standby mounted and cleaned (keeping `keep_top_level`), or
//                              mkfs.ext4 (same UUID/label) when it has no usable file system;
//                              its status UPDATING, version, slot_in_use := standby
//   CommitSwitch    commit:1   standby status files rewritten (an image may carry its own)
//                   commit:2   standby extlinux.conf APPEND lines: root=PARTUUID=<standby>;
//                              standby /etc/fstab merged (root entry: UUID=<standby fs uuid>)
//                   commit:3   external rootfs: standby /boot mirrored onto its eMMC partition
//                   commit:4   standby synced and unmounted
//                   commit:5   nvbootctrl set-active-boot-slot <standby>     <- the switch
// First start (ConfirmBoot): status UPDATING/ROLLBACKING and slot_in_use == current slot →
// nvbootctrl mark-boot-successful (confirm:1), SUCCESS. slot_in_use naming the other slot → we
// are on the old slot (CBoot fell back after its retries, or the operation was interrupted):
// FAILURE (ROLLBACK_FAILURE when the other slot says ROLLBACKING) with a reason, recorded in the
// running slot's status files (confirm:2), so a restart reports it again.
// The running slot's status file holds the outcome of the last operation started from it
// (upstream semantics); a slot that ran otaclient (SUCCESS/INITIALIZED/FAILURE/
// ROLLBACK_FAILURE/ABORTED in its own files) and that nvbootctrl calls bootable is a valid
// rollback target. Rollback: rollback:1 active slot_in_use := other, rollback:2 other slot
// ROLLBACKING + slot_in_use, rollback:3 set-active-boot-slot <other>.
#pragma once

#include <array>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "otaclient/boot/boot_controller.h"

namespace ota::boot {

struct CbootOptions {
  // The nvbootctrl binary (looked up on PATH when it has no '/').
  std::string nvbootctrl = "nvbootctrl";
  // Root of the running slot (its status files are in <active_root>/boot/ota-status/).
  std::filesystem::path active_root = "/";
  // Block device of the running rootfs; empty: the source of `active_root` in
  // /proc/self/mountinfo. Must be the device of nvbootctrl's current slot (checked).
  std::filesystem::path active_device;
  // Rootfs block device of slot 0 and slot 1 (config override): a device path or a
  // "PARTUUID=…", "UUID=…", "LABEL=…" or "PARTLABEL=…" spec (resolved with findfs); empty:
  // derived from the running rootfs device (partition 1 and 2 of its disk).
  std::array<std::filesystem::path, 2> rootfs_devices;
  // External rootfs (NVMe): the eMMC partitions holding /boot for slot 0 and 1 (same forms as
  // rootfs_devices). Empty and the rootfs is on nvme0n1: /dev/mmcblk0p1 and p2. Empty
  // otherwise: /boot is read from the rootfs.
  std::array<std::filesystem::path, 2> boot_devices;
  // Where the standby (and, for an external rootfs, its eMMC boot partition) are mounted.
  std::filesystem::path mount_dir = "/run/otaclient/mnt";
  // Reboot() runs this when set (tests); otherwise it runs `reboot`.
  std::function<absl::Status()> reboot_hook;
  // Called after each numbered step of the flow above ("prepare:1" … "commit:7",
  // "rollback:N", "confirm:N"); tests kill the process here to prove crash safety.
  std::function<void(std::string_view step)> step_hook;
};

// Creates the CBoot backend: reads nothing but checks the options; ConfirmBoot does the rest.
// boot_factory calls this for ecu_info `bootloader: cboot` (and `jetson-cboot`).
absl::StatusOr<std::unique_ptr<BootController>> CreateCbootBootController(CbootOptions options);

}  // namespace ota::boot
