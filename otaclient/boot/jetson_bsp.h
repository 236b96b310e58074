// Jetson platform facts read from text files and tool output, shared by the CBoot and UEFI
// backends and the BSP compatibility guard. Pure parsers: every one is table-tested and fuzzed.
//
//   BSP version       "R35.4.1", "r35.4.1" or "35.4.1" (a longer text that starts with one is
//                     accepted, as upstream's prefix match does: "R36.3.0-foo"); written "R35.4.1"
//   /etc/nv_tegra_release  first line "# R35 (release), REVISION: 4.1, GCID: 33958178,
//                     BOARD: t186ref, EABI: aarch64, DATE: …" → R35.4.1
//   /etc/nv_boot_control.conf  "TNSPEC <spec>" and "TEGRA_OTA_BOOT_DEVICE <dev>" lines (key, one
//                     space, value: upstream splits on the first space; a tab is an error there
//                     and is ignored here, the key then counts as absent)
//   nvbootctrl dump-slots-info (no -t, UEFI)  "Current version: 35.4.1", "Active bootloader
//                     slot: A", "Current bootloader slot: A", "Capsule update status: 1",
//                     "slot: 0,             status: normal"
#pragma once

#include <array>
#include <compare>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace ota::boot {

struct BspVersion {
  int major = 0;
  int revision = 0;
  int minor = 0;

  auto operator<=>(const BspVersion&) const = default;
  std::string ToString() const;  // "R35.4.1"
};

// kInvalidArgument naming the text for anything that does not start with [Rr]<int>.<int>.<int>
// (each number 0..9999).
absl::StatusOr<BspVersion> ParseBspVersion(std::string_view text);

// The BSP of a rootfs from the first line of its /etc/nv_tegra_release (kInvalidArgument when
// the first line does not match the format above).
absl::StatusOr<BspVersion> ParseNvTegraRelease(std::string_view text);

struct NvBootControlConf {
  std::string tnspec;                 // "" when absent
  std::string tegra_ota_boot_device;  // "" when absent ("/dev/mtdblock0", "/dev/mmcblk0boot0")
};
// Never fails: lines that are not "<KEY> <value>" are ignored (kInvalidArgument only for a NUL).
absl::StatusOr<NvBootControlConf> ParseNvBootControlConf(std::string_view text);

// Where the UEFI firmware of this Jetson lives, from TEGRA_OTA_BOOT_DEVICE: QSPI flash (UEFI
// variables in efivarfs) or the eMMC boot partitions (variables as files on the eMMC's ESP,
// EFI/NVDA/Variables/).
enum class FirmwareStorage { kUnknown, kQspi, kEmmc };
FirmwareStorage FirmwareStorageOf(const NvBootControlConf& conf);

struct DumpSlotsInfo {
  std::optional<BspVersion> firmware_version;  // "Current version:"
  std::string current_version_text;            // as printed ("35.4.1"), "" when absent
  std::optional<int> current_bootloader_slot;  // "Current bootloader slot: A" → 0
  std::optional<int> active_bootloader_slot;   // "Active bootloader slot: B" → 1
  std::optional<int> capsule_update_status;    // "Capsule update status: 1"
  // "slot: 1,             status: normal" → slot_status[1] == "normal" ("unbootable" after the
  // firmware gave up on it); "" when the line is absent.
  std::array<std::string, 2> slot_status;
};
// Lenient about lines it does not know (the tool prints more) and about "slot:" lines (one that
// does not parse is ignored); strict about the other values it reads: a "Current version:" that
// is not a BSP version is kInvalidArgument, a bootloader slot other than A/B/0/1 too.
absl::StatusOr<DumpSlotsInfo> ParseDumpSlotsInfo(std::string_view text);

}  // namespace ota::boot
