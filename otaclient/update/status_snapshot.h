// A consistent copy of one ECU's state for Status: what the service turns into both the v1
// StatusProgress view and the v2 UpdateStatus view. Readers never block the update.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ota::update {

// Values equal the wire's StatusOta.
enum class OtaStatus : int {
  kInitialized = 0,
  kSuccess = 1,
  kFailure = 2,
  kUpdating = 3,
  kRollbacking = 4,
  kRollbackFailure = 5,
  kClientUpdating = 6,
  kAborting = 7,
  kAborted = 8,
};

// Values equal the wire's UpdatePhase.
enum class UpdatePhase : int {
  kInitializing = 0,
  kProcessingMetadata = 1,
  kCalculatingDelta = 2,
  kDownloadingOtaFiles = 3,
  kApplyingUpdate = 4,
  kProcessingPostupdate = 5,
  kFinalizingUpdate = 6,
};
inline constexpr size_t kUpdatePhaseCount = 7;

// The format of the image an update loaded (the fleet metrics' ota_image_format).
enum class OtaImageFormat : uint8_t { kUnknown, kLegacy, kV1 };
// "" (not known yet), "legacy", "v1".
std::string_view OtaImageFormatName(OtaImageFormat format);

// Values equal the wire's StatusProgressPhase (v1 view).
enum class V1Phase : int {
  kInitial = 0,
  kMetadata = 1,
  kDirectory = 2,
  kSymlink = 3,
  kRegular = 4,
  kPersistent = 5,
  kPostProcessing = 6,
};

struct Progress {
  UpdatePhase phase = UpdatePhase::kInitializing;
  V1Phase v1_phase = V1Phase::kInitial;
  std::string update_firmware_version;
  uint64_t update_start_timestamp = 0;  // unix seconds
  uint64_t total_files_num = 0;         // regular files in the image
  uint64_t total_files_size = 0;        // their uncompressed bytes
  uint64_t total_download_files_num = 0;
  uint64_t total_download_files_size = 0;
  uint64_t downloaded_files_num = 0;
  uint64_t downloaded_files_size = 0;  // uncompressed
  uint64_t downloaded_bytes = 0;       // network bytes
  uint64_t downloading_errors = 0;     // retries
  uint64_t processed_files_num = 0;    // regular files in place on the standby
  uint64_t processed_files_size = 0;
  // How processed files got there (v1 view): reused from a local copy, hard-linked, downloaded.
  uint64_t files_copy = 0, size_copy = 0;
  uint64_t files_link = 0, size_link = 0;
  uint64_t files_download = 0, size_download = 0;
  // Milliseconds.
  uint64_t total_elapsed_ms = 0;
  uint64_t delta_elapsed_ms = 0;
  uint64_t download_elapsed_ms = 0;
  uint64_t apply_elapsed_ms = 0;
  uint64_t copy_elapsed_ms = 0;
  uint64_t link_elapsed_ms = 0;
  // For the fleet's per-session metrics record (otaclient/metrics/session_metrics.h), not on the
  // wire. Unix seconds at which the session first entered each wire phase (index: UpdatePhase;
  // 0: not reached). FINALIZING_UPDATE starts when the boot switch is committed (the wait for the
  // secondaries follows); reboot_start_timestamp is when Reboot() was about to be called.
  std::array<uint64_t, kUpdatePhaseCount> phase_start_timestamps{};
  uint64_t reboot_start_timestamp = 0;
  // The image beside its regular files: directories, symlinks, format.
  uint64_t total_directories_num = 0;
  uint64_t total_symlinks_num = 0;
  OtaImageFormat image_format = OtaImageFormat::kUnknown;
  bool in_place = false;  // the standby is written in place (update/in_place.h)
  // Not on the wire (asserted by tests): files the in-place plan rehashed, files the delta
  // planner hashed (both counted in delta_files_hashed).
  uint64_t in_place_rehashed = 0;
  uint64_t delta_files_hashed = 0;
};

struct StatusSnapshot {
  OtaStatus status = OtaStatus::kInitialized;
  int failure_type = 0;  // wire FailureType (0 none, 1 recoverable, 2 unrecoverable)
  std::string failure_reason;
  std::string firmware_version;  // version running now
  std::string release_name, release_id, image_id;
  Progress progress;  // meaningful while updating; kept after it ends for inspection
};

}  // namespace ota::update
