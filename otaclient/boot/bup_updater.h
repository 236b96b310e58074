// Jetson CBoot firmware update: the image's BUP (bootloader update payload) written to the
// standby bootloader slot with NVIDIA's nv_update_engine, and the check after the reboot.
//
//   ApplyBupFirmware (during CommitSwitch, standby still mounted, before the switch):
//     no firmware_update.yaml / manifest in the image, or no TNSPEC → nothing (kNone)
//     manifest BSP ≥ R34 (a UEFI package) or firmware_compat ⊄ TNSPEC → kFailedPrecondition
//     each requested BUP payload: file:// location (else kInvalidArgument), verified copy into
//       a private work dir (missing or digest mismatch: skipped, logged), then
//         unified A/B off:  nv_update_engine -i bl --payload <copy> --no-reboot
//         unified A/B on:   nv_update_engine -i bl-only --payload <copy>
//       (upstream's argv; a non-zero exit fails the update)
//     a firmware request that applied no payload at all → kFailedPrecondition (upstream fails
//       the OTA too: the image asked for firmware it does not deliver)
//   VerifyBootloader (first start in the new slot): nv_update_engine --verify; a non-zero exit
//     means the new bootloader slot did not come up.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/fs/rooted.h"
#include "otaclient/boot/firmware_package.h"

namespace ota::boot {

inline constexpr std::chrono::milliseconds kNvUpdateEngineTimeout = std::chrono::minutes(10);

struct BupOptions {
  std::string nv_update_engine = "nv_update_engine";  // looked up on PATH without a '/'
  bool unified_ab = false;
  std::string tnspec;              // from /etc/nv_boot_control.conf; "" → no firmware update
  std::filesystem::path work_dir;  // private dir for the verified payload copies (created)
};

enum class FirmwareOutcome { kNone, kApplied };

absl::StatusOr<FirmwareOutcome> ApplyBupFirmware(const fs::RootedDir& standby,
                                                 const std::optional<FirmwarePackageSet>& package,
                                                 const BupOptions& options);

// OK when `nv_update_engine --verify` exits 0; kFailedPrecondition with its output otherwise.
absl::Status VerifyBootloader(const std::string& nv_update_engine);

}  // namespace ota::boot
