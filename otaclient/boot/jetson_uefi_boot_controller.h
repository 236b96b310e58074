// The Jetson UEFI boot backend (Orin, JetPack 5/6, L4T ≥ R34), on the Jetson slot layer
// (rootfs_ab_controller.h and jetson_common.h: slots, status files, extlinux.conf
// root=PARTUUID=, the update/confirm/rollback flow and its step names). nvbootctrl is always called
// without -t: on UEFI the bootloader slot carries the rootfs with it (unified A/B).
//
// Startup (any failure refuses to start): the device tree's compatible string names a tegra;
// <active>/etc/nv_boot_control.conf exists (TNSPEC, TEGRA_OTA_BOOT_DEVICE); the firmware BSP
// from `nvbootctrl dump-slots-info` ("Current version: 35.4.1"; a revision of 0 means an
// incomplete flash) is at least R34 (older: `bootloader: jetson-cboot`); the rootfs BSP of
// /etc/nv_tegra_release, when present, only warns when it differs; `nvbootctrl
// get-current-slot` names the running slot.
//
// BSP compatibility guard (before the standby is touched): an image whose rootfs says its BSP
// (/etc/nv_tegra_release, see otaclient/update/image_platform.h) must match the running
// firmware's BSP exactly, else the update is refused (kFailedPrecondition, RECOVERABLE); an
// image that does not say is not checked.
//
// Platform steps:
//   prepare:1  the active boot slot (dump-slots-info "Active bootloader slot") reset to the
//              running one when an earlier switch left it elsewhere (nothing may boot the
//              standby while it is written; upstream does this at post-update because a
//              mismatch would cancel a capsule update)
//   commit:4   capsule firmware staged on the ESP (capsule_updater.h) when the image asks
//   commit:6   a capsule staged: OsIndications written (efivarfs on QSPI, the eMMC ESP's
//              variable file on eMMC) and no set-active-boot-slot (it would cancel the capsule:
//              the firmware moves the boot chain to the other slot itself); otherwise (or when
//              the trigger cannot be written: staged capsules removed) nvbootctrl
//              set-active-boot-slot <n>
//   confirm:1  nvbootctrl verify (its result is logged, like upstream)
//   rollback   nvbootctrl set-active-boot-slot <other>; the other slot must not be "unbootable"
//              in dump-slots-info
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "otaclient/boot/boot_controller.h"
#include "otaclient/boot/jetson_common.h"

namespace ota::boot {

struct JetsonUefiOptions : JetsonOptions {
  std::filesystem::path device_tree_compatible = "/sys/firmware/devicetree/base/compatible";
  // efivarfs (QSPI firmware variables); tests point it at a plain directory.
  std::filesystem::path efivars_dir = "/sys/firmware/efi/efivars";
  // Kernel name of the internal eMMC (its ESP holds the variables of eMMC-booted firmware).
  std::string internal_emmc_disk = "mmcblk0";
  // The ESPs' file system. Always vfat on a Jetson; tests on a kernel without a FAT driver use
  // an ext4 stand-in.
  std::string esp_fs_type = "vfat";
};

// boot_factory calls this for ecu_info `bootloader: jetson-uefi` (never auto-detected).
absl::StatusOr<std::unique_ptr<BootController>> CreateJetsonUefiBootController(
    JetsonUefiOptions options);

}  // namespace ota::boot
