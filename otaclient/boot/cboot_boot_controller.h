// The Jetson CBoot boot backend (Xavier, L4T < R34), on the Jetson slot layer
// (rootfs_ab_controller.h and jetson_common.h: slots, status files, extlinux.conf, the
// update/confirm/rollback flow and its step names).
//
// Startup: the rootfs BSP from <active>/etc/nv_tegra_release (required; ≥ R34 is refused: such a
// machine boots UEFI, `bootloader: jetson-uefi`), <active>/etc/nv_boot_control.conf must exist
// (TNSPEC for firmware). Unified A/B (bootloader and rootfs switch together) is asked with
// `nvbootctrl is-unified-enabled` from R32.6.1 on (exit 0: on; 70: rootfs-only A/B; 69 or
// other: off); older BSPs have rootfs-only A/B. nvbootctrl is then driven with `-t rootfs` when
// unified A/B is off and without -t when it is on.
//
// Platform steps:
//   prepare:1  nvbootctrl [-t rootfs] set-slot-as-unbootable <standby> (also when unified A/B
//              is on: upstream leaves the standby bootable there while it is written)
//   commit:4   BUP firmware (bup_updater.h) when the image carries a firmware request
//   commit:6   unified off: nvbootctrl -t rootfs set-active-boot-slot <n>, then
//              nvbootctrl set-active-boot-slot <n> (the bootloader follows the rootfs);
//              unified on: nvbootctrl set-active-boot-slot <n>
//   confirm:1  nv_update_engine --verify (non-zero: FAILURE, the new bootloader did not come
//              up), then unified off: nvbootctrl -t rootfs mark-boot-successful
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "otaclient/boot/boot_controller.h"
#include "otaclient/boot/jetson_common.h"

namespace ota::boot {

struct CbootOptions : JetsonOptions {
  // NVIDIA's firmware updater (looked up on PATH when it has no '/').
  std::string nv_update_engine = "nv_update_engine";
};

// Creates the CBoot backend: reads nothing but checks the options; ConfirmBoot does the rest.
// boot_factory calls this for ecu_info `bootloader: jetson-cboot` (and `cboot`).
absl::StatusOr<std::unique_ptr<BootController>> CreateCbootBootController(CbootOptions options);

}  // namespace ota::boot
