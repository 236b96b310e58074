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
// unbootable until the very last step):
//   PrepareStandby  1 nvbootctrl set-slot-as-unbootable <standby>
//                   2 active slot_in_use := standby (a restart on the active slot now means
//                     "the operation did not finish")
//                   3 standby: mount, clean (keeping `keep_top_level`) or mkfs.ext4 when it has
//                     no usable file system; status UPDATING, version, slot_in_use := standby
//   CommitSwitch    4 standby extlinux.conf APPEND lines: root=PARTUUID=<standby partuuid>
//                   5 external rootfs: mirror standby /boot onto the eMMC boot partition
//                   6 sync, unmount the standby
//                   7 nvbootctrl set-active-boot-slot <standby>       ← the switch
// First start (ConfirmBoot): status UPDATING/ROLLBACKING and slot_in_use == current slot →
// nvbootctrl mark-boot-successful, SUCCESS. slot_in_use naming the other slot → we are on the
// old slot (fallback or interrupted operation): FAILURE (ROLLBACK_FAILURE when the other slot
// says ROLLBACKING) with a reason, recorded on the running slot. CBoot itself falls back after
// its retry count when a slot set active is never marked successful.
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
  // Rootfs block device of slot 0 and slot 1; empty: derived from the running rootfs device
  // (partition 1 and 2 of its disk).
  std::array<std::filesystem::path, 2> rootfs_devices;
  // External rootfs (NVMe): the eMMC partitions holding /boot for slot 0 and 1. Empty and the
  // rootfs is on nvme0n1: /dev/mmcblk0p1 and p2. Empty otherwise: /boot is read from the rootfs.
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
