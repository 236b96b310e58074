// The boot seam: owns the A/B slots, the per-slot status/version and the boot switch.
// Implementations: DirBootController (directory slots; dev, demo, tests), GRUB (BIOS and UEFI
// disk layouts), Jetson CBoot, Jetson UEFI and Raspberry Pi tryboot (real block devices). The
// update engine sees only this interface.
#pragma once

#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ota::boot {

// Persisted per slot. Names are written to disk and must stay stable.
enum class SlotStatus {
  kInitialized,
  kUpdating,
  kSuccess,
  kFailure,
  kRollbacking,
  kRollbackFailure,
  kAborted,
};
std::string_view SlotStatusName(SlotStatus status);
absl::StatusOr<SlotStatus> ParseSlotStatus(std::string_view name);

// The release an image belongs to (UpdateRequestEcu release_name/release_id/image_id), kept per
// slot in its `version_detail` status file like the Python client does (slot_state_store.h).
struct ReleaseInfo {
  std::string release_name;
  std::string release_id;
  std::string image_id;

  // Upstream writes version_detail only when all three are set.
  bool complete() const {
    return !release_name.empty() && !release_id.empty() && !image_id.empty();
  }
  bool operator==(const ReleaseInfo&) const = default;
};

// What the controller concluded at process start about the slot we are running on.
struct BootState {
  SlotStatus status = SlotStatus::kInitialized;  // status to report for this ECU
  std::string version;                           // firmware version running now ("" unknown)
  std::string failure_reason;                    // set when status is kFailure
  std::string active_slot;                       // e.g. "a"/"b" or a device name
  ReleaseInfo release;                           // of the running image ("" fields: unknown)
  // Health-gated commit (DeferConfirmation): the slot we booted was switched to and waits for
  // CompleteConfirmation or RejectNewSlot; `status` is then kUpdating or kRollbacking.
  bool confirmation_pending = false;
};

// How RejectNewSlot's reason starts; the old slot's ConfirmBoot reports it as recorded.
inline constexpr std::string_view kHealthCheckFailedPrefix = "health check failed: ";

// What an image says about the platform it was built for, read from its signed metadata before
// the standby is touched (otaclient/update/image_platform.h). Backends that have a compatibility
// rule check it in CheckImageCompatible.
struct ImagePlatformInfo {
  // The Jetson BSP the image's rootfs was built from ("R35.4.1"), from the image's
  // /etc/nv_tegra_release; nullopt: the image does not say (no check).
  std::optional<std::string> jetson_bsp_version;
};

// What PrepareStandbyInPlace did.
struct PreparedStandby {
  std::filesystem::path root;  // the standby root to write into
  // The standby's earlier contents are still there (its file system was fit for an in-place
  // update); false: it was cleaned or reformatted as PrepareStandby does, for `reason`.
  bool contents_kept = false;
  std::string reason;
};

class BootController {
 public:
  virtual ~BootController() = default;

  // What the backend needs to know about an image before PrepareStandby (fetching it costs a
  // request, so only backends with a compatibility rule ask).
  virtual bool WantsImagePlatformInfo() const { return false; }
  // Refuses an image this machine must not install (kFailedPrecondition, RECOVERABLE: nothing
  // was touched), e.g. Jetson UEFI's BSP guard. Called before PrepareStandby.
  virtual absl::Status CheckImageCompatible(const ImagePlatformInfo& image) {
    (void)image;
    return absl::OkStatus();
  }

  // The release of the image the next PrepareStandby installs; backends that keep upstream's
  // status files write it as the standby's version_detail. Set by the session thread right
  // before PrepareStandby.
  void SetStandbyRelease(ReleaseInfo release) { standby_release_ = std::move(release); }

  // Called once at process start: confirms a freshly booted slot (status UPDATING on the slot we
  // booted → SUCCESS, made the default) or detects a fallback (we came back on the old slot →
  // FAILURE with a reason). Idempotent.
  virtual absl::StatusOr<BootState> ConfirmBoot() = 0;

  // Health-gated commit. Called before ConfirmBoot: a freshly switched-to slot (UPDATING or
  // ROLLBACKING on the slot we booted) is then NOT confirmed by ConfirmBoot, which returns that
  // status with confirmation_pending; nothing is made the default, so the boot loader's own
  // fallback still leads to the old slot. The caller runs its health check, then either
  //   CompleteConfirmation()   what ConfirmBoot would have done (SUCCESS, made the default), or
  //   RejectNewSlot(reason)    records FAILURE (ROLLBACK_FAILURE for a rollback) with
  //                            "health check failed: <reason>" where the old slot's ConfirmBoot
  //                            reads it, and arms the boot loader so that Reboot() returns to
  //                            the old slot (GRUB: the saved default was never moved; Jetson:
  //                            nvbootctrl's active slot set back; Raspberry Pi: no tryboot).
  // Backends without it keep confirming at once (SupportsDeferredConfirmation false).
  void DeferConfirmation() { defer_confirmation_ = true; }
  virtual bool SupportsDeferredConfirmation() const { return false; }
  virtual absl::StatusOr<BootState> CompleteConfirmation() {
    return absl::UnimplementedError("this boot backend does not defer the boot confirmation");
  }
  virtual absl::Status RejectNewSlot(std::string_view reason) {
    (void)reason;
    return absl::UnimplementedError("this boot backend does not defer the boot confirmation");
  }

  // Root of the running slot, read-only for the updater (delta source, persistent files).
  virtual std::filesystem::path ActiveRoot() const = 0;

  // Critical part of an update: marks the standby unbootable, records kUpdating + `version` for
  // it, cleans it (keeping `keep_top_level` entries, e.g. "/.ota-resources" for resume) and mounts
  // it. Returns the standby root to write into.
  virtual absl::StatusOr<std::filesystem::path> PrepareStandby(
      std::string_view version, std::span<const std::string_view> keep_top_level) = 0;

  // PrepareStandby for an in-place update: marks the standby unbootable and records kUpdating
  // the same way, but keeps its contents when its file system is fit to be updated in place
  // (block backends: ext4 and `e2fsck -n` clean on the unmounted device; directory slots:
  // always), mounting it read-write; otherwise it cleans or reformats exactly like
  // PrepareStandby and says why. The updater decides from the slot's own record what to do
  // with kept contents (otaclient/update/slot_table.h). Default: no in-place support.
  virtual absl::StatusOr<PreparedStandby> PrepareStandbyInPlace(
      std::string_view version, std::span<const std::string_view> keep_top_level) {
    absl::StatusOr<std::filesystem::path> root = PrepareStandby(version, keep_top_level);
    if (!root.ok()) return root.status();
    return PreparedStandby{*std::move(root), false, "this boot backend has no in-place support"};
  }

  // The standby is fully written: persist its status/version, fix its boot files and switch the
  // boot loader to try it exactly once at next boot. After this returns OK the update can no
  // longer be aborted.
  virtual absl::Status CommitSwitch() = 0;

  // Marks the standby failed/aborted after an unsuccessful update (it stays unbootable) and
  // unmounts it. Never touches the active slot.
  virtual absl::Status OnUpdateFailed(SlotStatus status) = 0;

  // Rollback (wire Rollback): OK when the other slot holds the previous good image (its status
  // SUCCESS) and can be booted; else kFailedPrecondition with the reason.
  virtual absl::Status CheckRollbackPossible() {
    return absl::UnimplementedError("this boot backend does not support rollback");
  }
  // Records ROLLBACKING for the other slot and arms a try-once boot into it, like CommitSwitch
  // (the next ConfirmBoot turns it into SUCCESS, or ROLLBACK_FAILURE after a fallback).
  virtual absl::Status CommitRollback() {
    return absl::UnimplementedError("this boot backend does not support rollback");
  }

  // Restarts the machine into the committed slot. Returns only on failure (or in test backends).
  virtual absl::Status Reboot() = 0;

 protected:
  const ReleaseInfo& standby_release() const { return standby_release_; }
  bool confirmation_deferred() const { return defer_confirmation_; }

 private:
  ReleaseInfo standby_release_;
  bool defer_confirmation_ = false;
};

}  // namespace ota::boot
