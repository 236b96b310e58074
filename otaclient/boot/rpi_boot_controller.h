// The Raspberry Pi 4 boot backend (`bootloader: rpi_boot`, the firmware's tryboot A/B), on the
// rootfs A/B layer (rootfs_ab_controller.h: status files, the update/confirm/rollback flow and
// its step names). Layout, like the Python client's: partition 1 of the running rootfs's disk is
// the FAT system-boot partition, partition 2 is slot_a, partition 3 is slot_b (slot ids are the
// slots' ext4 labels; a standby is relabelled to its id). The boot files on system-boot are
// described in rpi_boot_files.h.
//
// Startup: the device tree model names a "Raspberry Pi"; the running rootfs is partition 2 or 3;
// config.txt_<slot> and cmdline.txt_<slot> exist for both slots.
//
// Platform steps (system-boot is mounted at <mount_dir>/system-boot for each of them):
//   prepare:1  tryboot.txt := config.txt_<running> (a tryboot while the standby is written boots
//              the running slot; upstream leaves it naming the other slot after a confirm)
//   commit:2   standby /etc/fstab: its "/" line names LABEL=<standby> (merged, not replaced as
//              upstream does, so the image's other mounts stay), /boot/ota copied (the running
//              slot must have one, like upstream); the standby's kernel installed with its own
//              flash-kernel: system-boot, /proc and /sys bind-mounted into the standby (real
//              directories of the image, made when missing, never symlinks; /tmp made when
//              missing: OTA images leave it out), `env -i FK_FORCE=yes PATH=<standard>
//              chroot <standby> /usr/sbin/flash-kernel`, then vmlinuz → vmlinuz_<standby>,
//              initrd.img → initrd.img_<standby> on system-boot (flash-kernel also refreshes the
//              shared DTBs and overlays, as upstream)
//   commit:6   config.txt_<standby> checked (rpi_boot_files.h: every file it names exists, its
//              cmdline's root= is the standby) and copied to tryboot.txt; Reboot() then runs
//              `reboot "0 tryboot"` (one argument), which boots tryboot.txt once
//   confirm:1  config.txt := config.txt_<running> (the new slot becomes the default),
//              tryboot.txt := config.txt_<running>, flash-kernel's *.bak files removed
//   rollback   as commit:6 for the other slot (its config must pass the same check)
// Fallback needs nothing: tryboot is one-shot, so a new slot that does not come up (or never
// confirms) is followed by a boot of config.txt, the old slot, which then reports FAILURE.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "otaclient/boot/boot_controller.h"
#include "otaclient/boot/rootfs_ab_controller.h"

namespace ota::boot {

struct RpiBootOptions : RootfsAbOptions {
  std::filesystem::path device_tree_model = "/proc/device-tree/model";
  // The system-boot partition; empty: partition 1 of the running rootfs's disk.
  std::filesystem::path system_boot_device;
  // Always vfat on a Pi; tests on a kernel without a FAT driver use an ext4 stand-in.
  std::string system_boot_fs_type = "vfat";
  // Bind-mounted into the standby for flash-kernel (tests may point them elsewhere).
  std::filesystem::path proc = "/proc";
  std::filesystem::path sys = "/sys";
};

// boot_factory calls this for ecu_info `bootloader: rpi_boot` (and a detected Pi 4).
absl::StatusOr<std::unique_ptr<BootController>> CreateRpiBootController(RpiBootOptions options);

}  // namespace ota::boot
