#include "otaclient/boot/rootfs_ab_controller.h"

#include <sys/stat.h>

#include <cerrno>
#include <mutex>
#include <optional>
#include <system_error>
#include <utility>
#include <vector>

#include "common/fs/fs.h"
#include "common/fs/rooted.h"
#include "common/log/log.h"
#include "common/sys/command.h"
#include "common/util/errors.h"
#include "common/util/strings.h"
#include "otaclient/boot/block_slot.h"
#include "otaclient/boot/slot_state_store.h"

namespace ota::boot {

// rm -rf / cp -a of a whole slot directory (the Jetson/Pi boot files copy).
constexpr std::chrono::milliseconds kCopyTimeout = std::chrono::minutes(10);
namespace {

namespace stdfs = std::filesystem;

constexpr std::string_view kOtaConfigDir = "boot/ota";

// A slot that booted and ran otaclient writes one of these to its own status: its image is good.
// ROLLBACKING is a good image whose rollback boot did not happen or failed; a failed boot also
// makes the boot loader mark it unbootable, which the rollback check asks the platform about.
// UPDATING (a slot being written) never qualifies.
bool IsGoodImageStatus(SlotStatus status) {
  return status == SlotStatus::kSuccess || status == SlotStatus::kInitialized ||
         status == SlotStatus::kFailure || status == SlotStatus::kRollbackFailure ||
         status == SlotStatus::kAborted || status == SlotStatus::kRollbacking;
}

// A device path or PARTUUID=/UUID=/LABEL=/PARTLABEL= spec from config, through the one resolver
// (slot_layout.h); findfs answers for what is no partition of a known disk.
absl::StatusOr<BlockDevice> DescribeSpec(const std::string& spec, std::string_view what) {
  DeviceSpecOptions options;
  options.findfs_fallback = true;
  return ResolveDeviceSpec(SystemPaths{}, spec, what, options);
}

class RootfsAbController : public BootController {
 public:
  RootfsAbController(RootfsAbOptions options, std::unique_ptr<RootfsAbPlatform> platform)
      : options_(std::move(options)), platform_(std::move(platform)) {}

  absl::StatusOr<BootState> ConfirmBoot() override;
  std::filesystem::path ActiveRoot() const override { return options_.active_root; }
  bool WantsImagePlatformInfo() const override { return platform_->WantsImagePlatformInfo(); }
  absl::Status CheckImageCompatible(const ImagePlatformInfo& image) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!confirmed_.has_value()) {
      return absl::FailedPreconditionError(StrCat(name(), ": ConfirmBoot was not called"));
    }
    return platform_->CheckImageCompatible(image);
  }
  absl::StatusOr<std::filesystem::path> PrepareStandby(
      std::string_view version, std::span<const std::string_view> keep_top_level) override {
    OTA_ASSIGN_OR_RETURN(PreparedStandby prepared,
                         Prepare(version, keep_top_level, /*keep_contents=*/false));
    return prepared.root;
  }
  absl::StatusOr<PreparedStandby> PrepareStandbyInPlace(
      std::string_view version, std::span<const std::string_view> keep_top_level) override {
    return Prepare(version, keep_top_level, /*keep_contents=*/true);
  }
  absl::Status CommitSwitch() override;
  absl::Status OnUpdateFailed(SlotStatus status) override;
  absl::Status CheckRollbackPossible() override;
  absl::Status CommitRollback() override;
  absl::Status Reboot() override;
  bool SupportsDeferredConfirmation() const override { return true; }
  absl::StatusOr<BootState> CompleteConfirmation() override;
  absl::Status RejectNewSlot(std::string_view reason) override;

 private:
  // PrepareStandby, keeping the standby's contents when `keep_contents` and its file system is
  // fit (block_slot.h PrepareStandbyFileSystemInPlace).
  absl::StatusOr<PreparedStandby> Prepare(std::string_view version,
                                          std::span<const std::string_view> keep_top_level,
                                          bool keep_contents);
  std::string_view name() const { return platform_->Name(); }
  std::string SlotId(int slot) const { return platform_->SlotId(slot); }
  int standby() const { return slots_.standby(); }
  stdfs::path StandbyMountPoint() const { return options_.mount_dir / "standby"; }
  stdfs::path StandbyBootMountPoint() const { return options_.mount_dir / "standby_boot"; }
  // Through a RootedDir at the slot's root: symlinks of an image never lead out of its slot.
  SlotStateStore ActiveStore() const {
    return SlotStateStore(options_.active_root, std::string(kInRootfsStatusDir));
  }
  static SlotStateStore StoreAt(const stdfs::path& root) {
    return SlotStateStore(root, std::string(kInRootfsStatusDir));
  }
  void Step(std::string_view step) {
    log::Debug("rootfs a/b step", {{"platform", name()}, {"step", step}});
    if (options_.step_hook) options_.step_hook(step);
  }

  absl::StatusOr<BlockDevice> ActiveDevice() const;
  absl::Status ResolveDevices(const BlockDevice& active);
  absl::StatusOr<BootState> ConfirmBootLocked();
  // First start on the slot we switched to (its status `status`): the platform's confirmation.
  absl::StatusOr<BootState> ConfirmCurrentLocked(BootState boot, SlotStatus status,
                                                 const std::string& version);
  absl::StatusOr<SlotState> ReadStandbyStateReadOnly();
  absl::Status CheckRollbackPossibleLocked();
  absl::Status CopyOtaConfig(const stdfs::path& root);
  absl::Status MirrorBootPartition(const stdfs::path& root);
  absl::Status WriteStandbyState(const stdfs::path& root, SlotStatus status);

  RootfsAbOptions options_;
  std::unique_ptr<RootfsAbPlatform> platform_;
  std::mutex mu_;
  RootfsSlots slots_;
  std::array<std::optional<BlockDevice>, 2> boot_;
  std::optional<BootState> confirmed_;
  std::optional<MountedFileSystem> standby_mount_;
  bool prepared_ = false;
  bool committed_ = false;
  std::string standby_version_;
  ReleaseInfo standby_release_;
};

absl::StatusOr<BlockDevice> RootfsAbController::ActiveDevice() const {
  if (!options_.active_device.empty()) {
    return DescribeDeviceNode(SystemPaths{}, options_.active_device);
  }
  return DescribeMountSource(SystemPaths{}, options_.active_root);
}

absl::Status RootfsAbController::ResolveDevices(const BlockDevice& active) {
  for (int slot : {0, 1}) {
    if (!options_.rootfs_devices[slot].empty()) {
      OTA_ASSIGN_OR_RETURN(slots_.rootfs[slot],
                           DescribeSpec(options_.rootfs_devices[slot].string(),
                                        StrCat(name(), ": slot ", SlotId(slot), " rootfs")));
    } else {
      if (active.disk.empty()) {
        return absl::FailedPreconditionError(
            StrCat(name(), ": running rootfs ", active.node.string(),
                   " is not a partition; set the slot devices explicitly"));
      }
      OTA_ASSIGN_OR_RETURN(
          slots_.rootfs[slot],
          DescribePartitionOf(SystemPaths{}, active.disk, platform_->PartitionNumber(slot),
                              StrCat(name(), ": slot ", SlotId(slot), " (not an A/B layout)")));
    }
  }
  // The platform and the mounted root must agree, or we would write over the running system.
  const BlockDevice& expected = slots_.rootfs[slots_.current];
  if (expected.major != active.major || expected.minor != active.minor) {
    return absl::FailedPreconditionError(
        StrCat(name(), ": the boot loader says slot ", SlotId(slots_.current), " (",
               expected.node.string(), ") is running, but the root file system is ",
               active.node.string()));
  }
  if (slots_.rootfs[0].major == slots_.rootfs[1].major &&
      slots_.rootfs[0].minor == slots_.rootfs[1].minor) {
    return absl::FailedPreconditionError(
        StrCat(name(), ": both slots resolve to ", slots_.rootfs[0].node.string()));
  }
  for (int slot : {0, 1}) {
    std::string boot = options_.boot_devices[slot].string();
    if (boot.empty()) boot = platform_->DefaultBootDevice(active, slot).value_or("");
    if (boot.empty()) continue;
    OTA_ASSIGN_OR_RETURN(boot_[slot],
                         DescribeSpec(boot, StrCat(name(), ": slot ", SlotId(slot), " boot")));
  }
  log::Info("rootfs slots", {{"platform", name()},
                             {"current", SlotId(slots_.current)},
                             {"slot0", slots_.rootfs[0].node.string()},
                             {"slot1", slots_.rootfs[1].node.string()},
                             {"boot_partitions", boot_[0].has_value() ? "yes" : "no"}});
  return absl::OkStatus();
}

absl::StatusOr<BootState> RootfsAbController::ConfirmBoot() {
  std::lock_guard<std::mutex> lock(mu_);
  if (confirmed_.has_value()) return *confirmed_;
  absl::StatusOr<BootState> state = ConfirmBootLocked();
  if (state.ok()) confirmed_ = *state;
  return state;
}

absl::StatusOr<SlotState> RootfsAbController::ReadStandbyStateReadOnly() {
  OTA_ASSIGN_OR_RETURN(MountedFileSystem mounted,
                       MountedFileSystem::Mount(slots_.rootfs[standby()].node, StandbyMountPoint(),
                                                ReadOnlyMountSpec()));
  absl::StatusOr<SlotState> state = StoreAt(mounted.target()).Load();
  OTA_RETURN_IF_ERROR(mounted.SyncAndUnmount());
  return state;
}

absl::StatusOr<BootState> RootfsAbController::ConfirmBootLocked() {
  absl::StatusOr<BlockDevice> device = ActiveDevice();
  if (!device.ok()) return WithContext(device.status(), StrCat(name(), ": the running rootfs"));
  {
    OTA_ASSIGN_OR_RETURN(fs::RootedDir active, fs::RootedDir::Open(options_.active_root));
    OTA_ASSIGN_OR_RETURN(slots_.current, platform_->Start(active, *device));
  }
  if (slots_.current != 0 && slots_.current != 1) {
    return absl::InternalError(StrCat(name(), ": running slot ", slots_.current, " is not 0 or 1"));
  }
  OTA_RETURN_IF_ERROR(
      WithContext(ResolveDevices(*device), StrCat(name(), ": finding the A/B rootfs slots")));
  // A killed predecessor may have left the standby mounted.
  OTA_RETURN_IF_ERROR(UnmountAllUnder(options_.mount_dir));
  SlotStateStore store = ActiveStore();
  OTA_ASSIGN_OR_RETURN(SlotState state, store.Load());
  const std::string current = SlotId(slots_.current);
  if (!state.slot_in_use.empty() && state.slot_in_use != SlotId(0) &&
      state.slot_in_use != SlotId(1)) {
    log::Warning("ignoring a corrupt slot_in_use",
                 {{"file", (store.dir() / SlotStateStore::kSlotInUseFile).string()},
                  {"value", state.slot_in_use}});
    state.slot_in_use.clear();
  }

  BootState boot;
  boot.active_slot = current;
  boot.version = state.version;
  boot.release = state.release;
  if (!state.status.has_value() || state.slot_in_use.empty()) {
    // Never managed by us (or by the Python client) yet.
    if (!state.status.has_value()) {
      OTA_RETURN_IF_ERROR(store.WriteStatus(SlotStatus::kInitialized));
      state.status = SlotStatus::kInitialized;
    }
    OTA_RETURN_IF_ERROR(store.WriteSlotInUse(current));
    state.slot_in_use = current;
  }

  if (state.slot_in_use == current &&
      (state.status == SlotStatus::kUpdating || state.status == SlotStatus::kRollbacking)) {
    if (confirmation_deferred()) {
      // Health-gated: the platform is not told yet (nvbootctrl's mark-boot-successful, the Pi's
      // config.txt), so its own fallback still leads to the old slot.
      log::Info("new slot booted; its confirmation waits for the health check",
                {{"slot", current}});
      boot.status = *state.status;
      boot.confirmation_pending = true;
      return boot;
    }
    return ConfirmCurrentLocked(std::move(boot), *state.status, state.version);
  }

  if (state.slot_in_use != current) {
    // An update or rollback targeted the other slot, and we are still (or again) here: the boot
    // loader fell back, or the operation never reached the switch.
    SlotStatus outcome = SlotStatus::kFailure;
    std::string other_version;
    absl::StatusOr<SlotState> other = ReadStandbyStateReadOnly();
    std::string rejected;  // the other slot's health check failed (RejectNewSlot)
    if (other.ok()) {
      if (other->status == SlotStatus::kRollbacking ||
          other->status == SlotStatus::kRollbackFailure) {
        outcome = SlotStatus::kRollbackFailure;
      }
      other_version = other->version;
      if (other->failure_reason.starts_with(kHealthCheckFailedPrefix)) {
        rejected = other->failure_reason;
      }
    } else {
      log::Warning("cannot read the other slot's state",
                   {{"error", std::string(other.status().message())}});
    }
    std::string reason = StrCat(outcome == SlotStatus::kRollbackFailure ? "rollback" : "update",
                                " to slot ", state.slot_in_use);
    if (!other_version.empty()) StrAppend(&reason, " (version ", other_version, ")");
    StrAppend(&reason,
              " did not complete: new slot did not boot or the operation was interrupted; "
              "running slot ",
              current, " (", slots_.rootfs[slots_.current].node.string(), ")");
    if (!rejected.empty()) reason = rejected;
    Step("confirm:2");
    OTA_RETURN_IF_ERROR(store.WriteFailureReason(reason));
    OTA_RETURN_IF_ERROR(store.WriteStatus(outcome));
    OTA_RETURN_IF_ERROR(store.WriteSlotInUse(current));
    log::Warning("back on the old slot", {{"slot", current}, {"reason", reason}});
    boot.status = outcome;
    boot.failure_reason = reason;
    return boot;
  }

  boot.status = *state.status;
  if (boot.status == SlotStatus::kFailure || boot.status == SlotStatus::kRollbackFailure ||
      boot.status == SlotStatus::kAborted) {
    boot.failure_reason = state.failure_reason.empty()
                              ? StrCat("last operation ended with ", SlotStatusName(boot.status))
                              : state.failure_reason;
  }
  return boot;
}

absl::StatusOr<BootState> RootfsAbController::ConfirmCurrentLocked(BootState boot,
                                                                   SlotStatus status,
                                                                   const std::string& version) {
  // First start on the slot we switched to: the platform has the last word.
  SlotStateStore store = ActiveStore();
  const std::string current = SlotId(slots_.current);
  OTA_ASSIGN_OR_RETURN(SlotConfirmation confirmation, platform_->ConfirmNewSlot(slots_));
  Step("confirm:1");
  if (!confirmation.good) {
    const SlotStatus outcome =
        status == SlotStatus::kRollbacking ? SlotStatus::kRollbackFailure : SlotStatus::kFailure;
    const std::string reason = StrCat("slot ", current, " (version ", version,
                                      ") booted but is not good: ", confirmation.reason);
    OTA_RETURN_IF_ERROR(store.WriteFailureReason(reason));
    OTA_RETURN_IF_ERROR(store.WriteStatus(outcome));
    log::Warning("new slot not confirmed", {{"slot", current}, {"reason", reason}});
    boot.status = outcome;
    boot.failure_reason = reason;
    boot.confirmation_pending = false;
    return boot;
  }
  OTA_RETURN_IF_ERROR(store.WriteFailureReason(""));
  OTA_RETURN_IF_ERROR(store.WriteStatus(SlotStatus::kSuccess));
  log::Info("new slot confirmed", {{"slot", current}, {"version", version}});
  boot.status = SlotStatus::kSuccess;
  boot.confirmation_pending = false;
  return boot;
}

absl::StatusOr<BootState> RootfsAbController::CompleteConfirmation() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!confirmed_.has_value() || !confirmed_->confirmation_pending) {
    return absl::FailedPreconditionError(StrCat(name(), ": no boot confirmation is pending"));
  }
  OTA_ASSIGN_OR_RETURN(BootState boot,
                       ConfirmCurrentLocked(*confirmed_, confirmed_->status, confirmed_->version));
  confirmed_ = boot;
  return boot;
}

absl::Status RootfsAbController::RejectNewSlot(std::string_view reason) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!confirmed_.has_value() || !confirmed_->confirmation_pending) {
    return absl::FailedPreconditionError(StrCat(name(), ": no boot confirmation is pending"));
  }
  // Recorded in this slot's own files, which the old slot's ConfirmBoot reads (read-only) when
  // it finds itself running although its slot_in_use names this one.
  SlotStateStore store = ActiveStore();
  const SlotStatus outcome = confirmed_->status == SlotStatus::kRollbacking
                                 ? SlotStatus::kRollbackFailure
                                 : SlotStatus::kFailure;
  const std::string recorded = StrCat(kHealthCheckFailedPrefix, reason);
  OTA_RETURN_IF_ERROR(store.WriteFailureReason(recorded));
  OTA_RETURN_IF_ERROR(store.WriteStatus(outcome));
  Step("reject:1");
  OTA_RETURN_IF_ERROR(platform_->FallBack(slots_));
  Step("reject:2");
  log::Warning("new slot rejected: the next boot returns to the old slot",
               {{"slot", SlotId(slots_.current)},
                {"old_slot", SlotId(standby())},
                {"reason", std::string(reason)}});
  confirmed_->confirmation_pending = false;
  confirmed_->status = outcome;
  confirmed_->failure_reason = recorded;
  return absl::OkStatus();
}

absl::StatusOr<PreparedStandby> RootfsAbController::Prepare(
    std::string_view version, std::span<const std::string_view> keep_top_level,
    bool keep_contents) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!confirmed_.has_value()) {
    return absl::FailedPreconditionError(StrCat(name(), ": ConfirmBoot was not called"));
  }
  if (standby_mount_.has_value()) {
    OTA_RETURN_IF_ERROR(standby_mount_->SyncAndUnmount());
    standby_mount_.reset();
  }
  prepared_ = false;
  committed_ = false;
  const int slot = standby();
  OTA_RETURN_IF_ERROR(platform_->ProtectStandby(slots_));
  Step("prepare:1");
  OTA_RETURN_IF_ERROR(ActiveStore().WriteSlotInUse(SlotId(slot)));
  Step("prepare:2");
  OTA_RETURN_IF_ERROR(UnmountAllUnder(options_.mount_dir));
  StandbyPrepareOptions prepare;
  prepare.mount_dir = StandbyMountPoint();
  auto prepare_fs = [&]() -> absl::StatusOr<StandbyFileSystem> {
    if (keep_contents) {
      return PrepareStandbyFileSystemInPlace(slots_.rootfs[slot], keep_top_level, prepare);
    }
    OTA_ASSIGN_OR_RETURN(MountedFileSystem fs,
                         PrepareStandbyFileSystem(slots_.rootfs[slot], keep_top_level, prepare));
    return StandbyFileSystem{std::move(fs), false, "rebuild requested"};
  };
  OTA_ASSIGN_OR_RETURN(StandbyFileSystem prepared, prepare_fs());
  MountedFileSystem mounted = std::move(prepared.mount);
  if (std::optional<std::string> label = platform_->StandbyLabel(slot); label.has_value()) {
    OTA_ASSIGN_OR_RETURN(std::optional<Ext4Identity> current,
                         ReadExt4Identity(slots_.rootfs[slot].node));
    if (!current.has_value() || current->label != *label) {
      OTA_RETURN_IF_ERROR(
          sys::RunProgramChecked({"e2label", slots_.rootfs[slot].node.string(), *label}).status());
    }
  }
  // A standby that had no file system got a fresh UUID: fstab must name that one.
  OTA_ASSIGN_OR_RETURN(std::optional<Ext4Identity> identity,
                       ReadExt4Identity(slots_.rootfs[slot].node));
  if (identity.has_value()) {
    slots_.rootfs[slot].fs_type = "ext4";
    slots_.rootfs[slot].fs_uuid = identity->uuid;
    slots_.rootfs[slot].fs_label = identity->label;
  }
  standby_version_ = std::string(version);
  standby_release_ = standby_release();
  OTA_RETURN_IF_ERROR(WriteStandbyState(mounted.target(), SlotStatus::kUpdating));
  Step("prepare:3");
  stdfs::path root = mounted.target();
  standby_mount_ = std::move(mounted);
  prepared_ = true;
  log::Info("standby prepared", {{"platform", name()},
                                 {"slot", SlotId(slot)},
                                 {"device", slots_.rootfs[slot].node.string()},
                                 {"version", version},
                                 {"contents", prepared.contents_kept ? "kept" : "cleaned"}});
  return PreparedStandby{root, prepared.contents_kept, std::move(prepared.reason)};
}

absl::Status RootfsAbController::WriteStandbyState(const stdfs::path& root, SlotStatus status) {
  {
    // The image may carry its own ota-status: ours win, in a real directory of the slot.
    OTA_ASSIGN_OR_RETURN(fs::RootedDir dir, fs::RootedDir::Open(root));
    absl::StatusOr<struct stat> st = dir.Lstat(kInRootfsStatusDir);
    if (st.ok() && !S_ISDIR(st->st_mode)) OTA_RETURN_IF_ERROR(dir.RemoveAll(kInRootfsStatusDir));
  }
  SlotStateStore store = StoreAt(root);
  OTA_RETURN_IF_ERROR(store.WriteStatus(status));
  if (status == SlotStatus::kUpdating) {
    OTA_RETURN_IF_ERROR(store.WriteVersion(standby_version_));
    OTA_RETURN_IF_ERROR(store.WriteRelease(standby_release_));
  }
  OTA_RETURN_IF_ERROR(store.WriteSlotInUse(SlotId(standby())));
  return store.WriteFailureReason("");
}

absl::Status RootfsAbController::CopyOtaConfig(const stdfs::path& root) {
  const stdfs::path source = options_.active_root / kOtaConfigDir;
  std::error_code ec;
  if (!stdfs::is_directory(source, ec)) {
    if (!platform_->RequiresOtaConfig()) return absl::OkStatus();  // upstream Jetson: skipped
    return absl::FailedPreconditionError(
        StrCat(name(), ": the running slot has no ", source.string(), " to carry over"));
  }
  OTA_RETURN_IF_ERROR(CheckRealDirs(root, "boot"));
  OTA_RETURN_IF_ERROR(MirrorDirectory(source, root / kOtaConfigDir));
  log::Info("/boot/ota copied to the standby", {{"from", source.string()}});
  return absl::OkStatus();
}

absl::Status RootfsAbController::MirrorBootPartition(const stdfs::path& root) {
  const std::optional<BlockDevice>& boot = boot_[standby()];
  if (!boot.has_value()) return absl::OkStatus();
  OTA_RETURN_IF_ERROR(CheckRealDirs(root, "boot"));
  OTA_ASSIGN_OR_RETURN(
      MountedFileSystem mounted,
      MountedFileSystem::Mount(boot->node, StandbyBootMountPoint(), StandbyMountSpec()));
  OTA_RETURN_IF_ERROR(MirrorDirectory(root / "boot", mounted.target() / "boot"));
  OTA_RETURN_IF_ERROR(mounted.SyncAndUnmount());
  log::Info("standby /boot mirrored to its boot partition", {{"device", boot->node.string()}});
  return absl::OkStatus();
}

absl::Status RootfsAbController::CommitSwitch() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!prepared_ || !standby_mount_.has_value()) {
    return absl::FailedPreconditionError(StrCat(name(), ": no standby prepared"));
  }
  const stdfs::path root = standby_mount_->target();
  // The image may carry its own ota-status files: ours win.
  OTA_RETURN_IF_ERROR(WriteStandbyState(root, SlotStatus::kUpdating));
  Step("commit:1");
  OTA_RETURN_IF_ERROR(platform_->WriteBootFiles(root, options_.active_root, slots_));
  OTA_RETURN_IF_ERROR(CopyOtaConfig(root));
  Step("commit:2");
  OTA_RETURN_IF_ERROR(MirrorBootPartition(root));
  Step("commit:3");
  {
    OTA_ASSIGN_OR_RETURN(fs::RootedDir image, fs::RootedDir::Open(root));
    OTA_RETURN_IF_ERROR(
        WithContext(platform_->StageFirmware(image, slots_), StrCat(name(), ": firmware update")));
  }
  Step("commit:4");
  OTA_RETURN_IF_ERROR(standby_mount_->SyncAndUnmount());
  standby_mount_.reset();
  Step("commit:5");
  OTA_RETURN_IF_ERROR(platform_->Switch(slots_, standby(), /*update=*/true));
  committed_ = true;
  Step("commit:6");
  log::Info("boot switch committed: the boot loader tries the standby next",
            {{"platform", name()}, {"slot", SlotId(standby())}, {"version", standby_version_}});
  return absl::OkStatus();
}

absl::Status RootfsAbController::OnUpdateFailed(SlotStatus status) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!prepared_) return absl::FailedPreconditionError(StrCat(name(), ": no standby prepared"));
  absl::Status result = absl::OkStatus();
  if (committed_) {
    // Never happens through the session (nothing fails after the switch); undo it anyway.
    result.Update(platform_->Switch(slots_, slots_.current, /*update=*/false));
  } else {
    platform_->DiscardFirmware(slots_);
  }
  if (standby_mount_.has_value()) {
    result.Update(standby_mount_->SyncAndUnmount());
    standby_mount_.reset();
  }
  SlotStateStore store = ActiveStore();
  OTA_RETURN_IF_ERROR(
      store.WriteFailureReason(StrCat("update of slot ", standby(), " to version ",
                                      standby_version_, " ended with ", SlotStatusName(status))));
  OTA_RETURN_IF_ERROR(store.WriteStatus(status));
  OTA_RETURN_IF_ERROR(store.WriteSlotInUse(SlotId(slots_.current)));
  prepared_ = false;
  committed_ = false;
  return result;
}

absl::Status RootfsAbController::CheckRollbackPossibleLocked() {
  if (!confirmed_.has_value()) {
    return absl::FailedPreconditionError(StrCat(name(), ": ConfirmBoot was not called"));
  }
  if (prepared_) return absl::FailedPreconditionError(StrCat(name(), ": an update is in progress"));
  const int slot = standby();
  OTA_ASSIGN_OR_RETURN(bool bootable, platform_->IsSlotBootable(slots_, slot));
  if (!bootable) {
    return absl::FailedPreconditionError(
        StrCat("rollback impossible: slot ", slot, " is marked unbootable"));
  }
  absl::StatusOr<SlotState> other = ReadStandbyStateReadOnly();
  if (!other.ok()) {
    return absl::FailedPreconditionError(
        StrCat("rollback impossible: cannot read slot ", slot, ": ", other.status().message()));
  }
  if (!other->status.has_value() || !IsGoodImageStatus(*other->status)) {
    return absl::FailedPreconditionError(
        StrCat("rollback impossible: slot ", slot, " does not hold a good image (status ",
               other->status ? SlotStatusName(*other->status) : "missing", ")"));
  }
  return absl::OkStatus();
}

absl::Status RootfsAbController::CheckRollbackPossible() {
  std::lock_guard<std::mutex> lock(mu_);
  return CheckRollbackPossibleLocked();
}

absl::Status RootfsAbController::CommitRollback() {
  std::lock_guard<std::mutex> lock(mu_);
  OTA_RETURN_IF_ERROR(CheckRollbackPossibleLocked());
  const int slot = standby();
  SlotStateStore active = ActiveStore();
  auto fail = [&](const absl::Status& error) {
    // Not switched: we stay here and report why.
    (void)active.WriteFailureReason(StrCat("rollback to slot ", slot, ": ", error.message()));
    (void)active.WriteStatus(SlotStatus::kRollbackFailure);
    (void)active.WriteSlotInUse(SlotId(slots_.current));
    return error;
  };
  if (absl::Status s = active.WriteSlotInUse(SlotId(slot)); !s.ok()) return fail(s);
  Step("rollback:1");
  {
    absl::StatusOr<MountedFileSystem> mounted =
        MountedFileSystem::Mount(slots_.rootfs[slot].node, StandbyMountPoint(), StandbyMountSpec());
    if (!mounted.ok()) return fail(mounted.status());
    SlotStateStore store = StoreAt(mounted->target());
    absl::Status written = store.WriteStatus(SlotStatus::kRollbacking);
    written.Update(store.WriteSlotInUse(SlotId(slot)));
    written.Update(mounted->SyncAndUnmount());
    if (!written.ok()) return fail(written);
  }
  Step("rollback:2");
  if (absl::Status s = platform_->Switch(slots_, slot, /*update=*/false); !s.ok()) return fail(s);
  Step("rollback:3");
  log::Info("rollback committed: the boot loader tries the other slot next",
            {{"platform", name()}, {"slot", SlotId(slot)}});
  return absl::OkStatus();
}

absl::Status RootfsAbController::Reboot() {
  if (options_.reboot_hook) return options_.reboot_hook();
  const std::vector<std::string> command = platform_->RebootCommand();
  log::Info("rebooting", {{"command", sys::DescribeArgv(command)}});
  return sys::RunProgramChecked(command).status();
}

}  // namespace

// The directory `relative` inside `root` must be a real directory (not a symlink that could
// point anywhere once we write through it by path).
absl::Status CheckRealDirs(const stdfs::path& root, std::string_view relative) {
  stdfs::path path = root;
  for (const stdfs::path& part : stdfs::path(relative)) {
    path /= part;
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) return ErrnoStatus(errno, StrCat("lstat ", path.string()));
    if (!S_ISDIR(st.st_mode)) {
      return absl::InvalidArgumentError(
          StrCat(path.string(), " in the new image is not a directory (symlink?)"));
    }
  }
  return absl::OkStatus();
}

// `dest` becomes an exact copy of the directory `src` (old content removed first; modes, owners,
// links and times kept: what `cp -rdpT` plus the delete pass did upstream). The last component
// of `dest` is replaced, never followed.
absl::Status MirrorDirectory(const stdfs::path& src, const stdfs::path& dest) {
  OTA_RETURN_IF_ERROR(
      sys::RunProgramChecked({"rm", "-rf", "--one-file-system", "--", dest.string()}, kCopyTimeout)
          .status());
  return sys::RunProgramChecked({"cp", "-a", "-T", "--", src.string(), dest.string()}, kCopyTimeout)
      .status();
}

absl::StatusOr<std::unique_ptr<BootController>> CreateRootfsAbController(
    RootfsAbOptions options, std::unique_ptr<RootfsAbPlatform> platform) {
  if (platform == nullptr) return absl::InvalidArgumentError("rootfs A/B: no platform");
  const std::string_view name = platform->Name();
  if (options.active_root.empty() || !options.active_root.is_absolute()) {
    return absl::InvalidArgumentError(
        StrCat(name, ": active root '", options.active_root.string(), "' must be absolute"));
  }
  if (options.mount_dir.empty() || !options.mount_dir.is_absolute()) {
    return absl::InvalidArgumentError(
        StrCat(name, ": mount dir '", options.mount_dir.string(), "' must be absolute"));
  }
  if (options.rootfs_devices[0].empty() != options.rootfs_devices[1].empty()) {
    return absl::InvalidArgumentError(StrCat(name, ": give both slot rootfs devices or neither"));
  }
  if (options.boot_devices[0].empty() != options.boot_devices[1].empty()) {
    return absl::InvalidArgumentError(StrCat(name, ": give both slot boot devices or neither"));
  }
  return std::make_unique<RootfsAbController>(std::move(options), std::move(platform));
}

}  // namespace ota::boot
