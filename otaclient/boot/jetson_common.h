// What both Jetson backends (cboot_boot_controller.h, jetson_uefi_boot_controller.h) share on top
// of the rootfs A/B layer (rootfs_ab_controller.h): nvbootctrl's slot numbers "0"/"1" as slot
// ids, slot N on partition N+1 of the running rootfs's disk, the eMMC /boot mirror of an NVMe
// rootfs (mmcblk0p<N+1>), and the standby's boot files:
//   /boot/extlinux/extlinux.conf  every APPEND line gets root=PARTUUID=<standby> (extlinux.h)
//   /etc/fstab                    merged: its "/" entry names the standby's own file system
// and the BSP facts of the running slot's /etc (jetson_bsp.h).
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/fs/rooted.h"
#include "otaclient/boot/jetson_bsp.h"
#include "otaclient/boot/rootfs_ab_controller.h"

namespace ota::boot {

inline constexpr std::string_view kNvTegraRelease = "etc/nv_tegra_release";
inline constexpr std::string_view kNvBootControlConf = "etc/nv_boot_control.conf";

// Options of both Jetson backends.
struct JetsonOptions : RootfsAbOptions {
  // The nvbootctrl binary (looked up on PATH when it has no '/').
  std::string nvbootctrl = "nvbootctrl";
};

class JetsonPlatformBase : public RootfsAbPlatform {
 public:
  std::string SlotId(int slot) const override { return std::to_string(slot); }
  int PartitionNumber(int slot) const override { return slot + 1; }
  // An external rootfs (NVMe): the boot loader reads /boot from the eMMC partition of the slot.
  std::optional<std::string> DefaultBootDevice(const BlockDevice& active, int slot) const override;
  absl::Status WriteBootFiles(const std::filesystem::path& standby,
                              const std::filesystem::path& active_root,
                              const RootfsSlots& slots) override;
};

// The running slot's rootfs BSP from <active>/etc/nv_tegra_release (errors name the file).
absl::StatusOr<BspVersion> ReadRootfsBsp(const fs::RootedDir& active);
// <active>/etc/nv_boot_control.conf; kNotFound (naming the file) when missing.
absl::StatusOr<NvBootControlConf> ReadNvBootControlConf(const fs::RootedDir& active);

}  // namespace ota::boot
