// Jetson UEFI firmware update by UEFI capsule (L4T ≥ R35.2), in two phases so that the trigger,
// which is the switch, stays the very last step of an update:
//
//   StageCapsuleUpdate (CommitSwitch, standby still mounted):
//     no firmware package in the image → nothing. Skipped (logged) when: the running firmware
//     is older than R35.2, the package's BSP is older than R35.2 or older than the running
//     firmware (no downgrade; equal re-flashes), no TNSPEC, firmware_compat ⊄ TNSPEC, or
//     TEGRA_OTA_BOOT_DEVICE names neither QSPI nor the eMMC (no way to trigger). Otherwise the
//     ESP of the booted disk (GPT partition named "esp" on the running rootfs's disk; none there
//     fails the update) is mounted (vfat: nodev,nosuid,noexec,noatime,quiet — NOT the ext4
//     options upstream passes, which a FAT file system refuses), EFI/UpdateCapsule/ is emptied
//     of stale capsules and every requested UEFI-CAPSULE payload is copied there, verified
//     against its digest (a file:// location is required; a missing or mismatching payload is
//     skipped). None copied → no capsule update. Then the L4TLauncher (EFI/BOOT/BOOTAA64.efi,
//     shared by both slots): its version from EFI/BOOT/l4tlauncher_version
//     ("R36.3.0:<sha256>", trusted only when the digest matches), else from a table of known
//     launcher digests, else assumed to be the running firmware's (and recorded); older than the
//     package → the requested UEFI-BOOT-APP payload replaces it (old one kept as
//     BOOTAA64.efi_bak; every ESP write is temp + fsync + rename, never in place) and the
//     version file says "<package BSP>:<sha256>". The ESP is synced and unmounted.
//   TriggerCapsuleUpdate (the switch): OsIndications with the capsule bit (efi_var.h), into
//     efivarfs (QSPI) or EFI/NVDA/Variables/ on the internal eMMC's ESP (eMMC). The firmware then
//     applies the capsules at the next boot and moves the whole boot chain to the other slot by
//     itself: no nvbootctrl set-active-boot-slot may follow (it would cancel the capsule).
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/fs/rooted.h"
#include "otaclient/boot/firmware_package.h"
#include "otaclient/boot/jetson_bsp.h"
#include "otaclient/boot/slot_layout.h"

namespace ota::boot {

inline constexpr BspVersion kFirstCapsuleBsp{35, 2, 0};
inline constexpr std::string_view kCapsuleDirOnEsp = "EFI/UpdateCapsule";
inline constexpr std::string_view kL4tLauncherOnEsp = "EFI/BOOT/BOOTAA64.efi";
inline constexpr std::string_view kL4tLauncherBackupOnEsp = "EFI/BOOT/BOOTAA64.efi_bak";
inline constexpr std::string_view kL4tLauncherVersionOnEsp = "EFI/BOOT/l4tlauncher_version";
inline constexpr std::string_view kEspPartitionLabel = "esp";

struct CapsuleOptions {
  BspVersion firmware_bsp;  // the running firmware's (nvbootctrl dump-slots-info)
  NvBootControlConf conf;   // TNSPEC, TEGRA_OTA_BOOT_DEVICE
  SystemPaths paths;        // /sys and /dev for finding the ESPs
  std::string boot_disk;    // kernel name of the running rootfs's disk ("nvme0n1")
  std::string internal_emmc_disk = "mmcblk0";
  std::filesystem::path esp_mount_dir;  // where an ESP is mounted while written
  std::string esp_fs_type = "vfat";     // (tests on kernels without FAT: an ext4 stand-in)
  std::filesystem::path efivars_dir = "/sys/firmware/efi/efivars";
  std::filesystem::path mountinfo = "/proc/self/mountinfo";
};

struct StagedCapsule {
  FirmwareStorage storage = FirmwareStorage::kUnknown;
  BspVersion package_bsp;
  int capsules = 0;
  bool launcher_updated = false;
};

absl::StatusOr<std::optional<StagedCapsule>> StageCapsuleUpdate(
    const fs::RootedDir& standby, const std::optional<FirmwarePackageSet>& package,
    const CapsuleOptions& options);

absl::Status TriggerCapsuleUpdate(const StagedCapsule& staged, const CapsuleOptions& options);

// Removes EFI/UpdateCapsule/ content from the booted disk's ESP (a staged capsule whose trigger
// could not be written must not be applied by a later trigger). Missing ESP: nothing to do.
absl::Status ClearStagedCapsules(const CapsuleOptions& options);

// L4TLauncher version file "<BSP>:<sha256 hex>"; nullopt when it does not parse.
struct L4tLauncherVersion {
  BspVersion bsp;
  std::string sha256;
};
std::optional<L4tLauncherVersion> ParseL4tLauncherVersion(std::string_view text);
// The launcher BSP for a known launcher binary digest (upstream's table), else nullopt.
std::optional<BspVersion> KnownL4tLauncherVersion(std::string_view sha256_hex);

}  // namespace ota::boot
