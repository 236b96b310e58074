#include "otaclient/boot/cboot_boot_controller.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cerrno>
#include <cstdio>
#include <mutex>
#include <system_error>
#include <utility>
#include <vector>

#include "common/fs/fs.h"
#include "common/fs/rooted.h"
#include "common/log/log.h"
#include "common/util/errors.h"
#include "common/util/strings.h"
#include "otaclient/boot/block_slot.h"
#include "otaclient/boot/command.h"
#include "otaclient/boot/extlinux.h"
#include "otaclient/boot/nvbootctrl.h"
#include "otaclient/boot/slot_layout.h"
#include "otaclient/boot/slot_state_store.h"

namespace ota::boot {
namespace {

namespace stdfs = std::filesystem;

constexpr std::string_view kStatusDir = "boot/ota-status";
constexpr std::string_view kExtlinuxConf = "boot/extlinux/extlinux.conf";

std::string SlotName(int slot) { return std::to_string(slot); }

// A slot that booted and ran otaclient writes one of these to its own status: its image is good.
// ROLLBACKING is a good image whose rollback boot did not happen or failed; a failed boot also
// makes CBoot mark it unbootable, which the rollback check asks nvbootctrl about. UPDATING (a
// slot being written) never qualifies.
bool IsGoodImageStatus(SlotStatus status) {
  return status == SlotStatus::kSuccess || status == SlotStatus::kInitialized ||
         status == SlotStatus::kFailure || status == SlotStatus::kRollbackFailure ||
         status == SlotStatus::kAborted || status == SlotStatus::kRollbacking;
}

// Kernel name of partition `number` of `disk`: "mmcblk0" + 2 → "mmcblk0p2", "sda" + 2 → "sda2".
std::string PartitionName(std::string_view disk, int number) {
  const bool digit_end = !disk.empty() && disk.back() >= '0' && disk.back() <= '9';
  return StrCat(disk, digit_end ? "p" : "", number);
}

// A device path or PARTUUID=/UUID=/LABEL=/PARTLABEL= spec from config, through the one resolver
// (slot_layout.h); findfs answers for what is no partition of a known disk.
absl::StatusOr<BlockDevice> DescribeSpec(const std::string& spec, std::string_view what) {
  DeviceSpecOptions options;
  options.findfs_fallback = true;
  return ResolveDeviceSpec(SystemPaths{}, spec, what, options);
}

absl::StatusOr<BlockDevice> DescribePartition(std::string_view disk, int number) {
  const std::string name = PartitionName(disk, number);
  const stdfs::path dev_file = stdfs::path("/sys/class/block") / name / "dev";
  absl::StatusOr<std::string> dev = fs::ReadFile(dev_file);
  if (!dev.ok()) {
    return absl::FailedPreconditionError(
        StrCat("cboot: partition ", number, " of ", disk, " (", name,
               ") does not exist: not an A/B rootfs layout (", dev.status().message(), ")"));
  }
  OTA_ASSIGN_OR_RETURN(DeviceNumber device, ParseDeviceNumber(*dev, dev_file.string()));
  return DescribeBlockDevice(SystemPaths{}, device.major, device.minor);
}

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

class CbootBootController : public BootController {
 public:
  explicit CbootBootController(CbootOptions options)
      : options_(std::move(options)), nvbootctrl_(options_.nvbootctrl) {}

  absl::StatusOr<BootState> ConfirmBoot() override;
  std::filesystem::path ActiveRoot() const override { return options_.active_root; }
  absl::StatusOr<std::filesystem::path> PrepareStandby(
      std::string_view version, std::span<const std::string_view> keep_top_level) override;
  absl::Status CommitSwitch() override;
  absl::Status OnUpdateFailed(SlotStatus status) override;
  absl::Status CheckRollbackPossible() override;
  absl::Status CommitRollback() override;
  absl::Status Reboot() override;

 private:
  int standby() const { return 1 - current_; }
  stdfs::path StandbyMountPoint() const { return options_.mount_dir / "standby"; }
  stdfs::path StandbyBootMountPoint() const { return options_.mount_dir / "standby_boot"; }
  // Through a RootedDir at the slot's root: symlinks of an image never lead out of its slot.
  SlotStateStore ActiveStore() const {
    return SlotStateStore(options_.active_root, std::string(kStatusDir));
  }
  SlotStateStore StoreAt(const stdfs::path& root) const {
    return SlotStateStore(root, std::string(kStatusDir));
  }
  void Step(std::string_view step) {
    log::Debug("cboot step", {{"step", step}});
    if (options_.step_hook) options_.step_hook(step);
  }

  absl::Status ResolveDevices();
  absl::StatusOr<BootState> ConfirmBootLocked();
  absl::StatusOr<SlotState> ReadStandbyStateReadOnly();
  absl::Status CheckRollbackPossibleLocked();
  absl::Status RewriteExtlinux(const stdfs::path& root);
  absl::Status MergeStandbyFstab(const stdfs::path& root);
  absl::Status MirrorBootToEmmc(const stdfs::path& root);
  absl::Status WriteStandbyState(const stdfs::path& root, SlotStatus status);

  CbootOptions options_;
  Nvbootctrl nvbootctrl_;
  std::mutex mu_;
  int current_ = -1;
  std::array<BlockDevice, 2> rootfs_;
  std::array<std::optional<BlockDevice>, 2> boot_;
  std::optional<BootState> confirmed_;
  std::optional<MountedFileSystem> standby_mount_;
  bool prepared_ = false;
  bool committed_ = false;
  std::string standby_version_;
};

absl::Status CbootBootController::ResolveDevices() {
  OTA_ASSIGN_OR_RETURN(int count, nvbootctrl_.GetNumberSlots());
  if (count != 2) {
    return absl::FailedPreconditionError(
        StrCat("cboot: nvbootctrl reports ", count, " rootfs slots; A/B needs exactly 2"));
  }
  OTA_ASSIGN_OR_RETURN(current_, nvbootctrl_.GetCurrentSlot());

  BlockDevice active;
  if (!options_.active_device.empty()) {
    OTA_ASSIGN_OR_RETURN(active, DescribeDeviceNode(SystemPaths{}, options_.active_device));
  } else {
    OTA_ASSIGN_OR_RETURN(std::string mountinfo, fs::ReadFile("/proc/self/mountinfo"));
    OTA_ASSIGN_OR_RETURN(DeviceNumber number, FindMountDevice(mountinfo, options_.active_root));
    OTA_ASSIGN_OR_RETURN(active, DescribeBlockDevice(SystemPaths{}, number.major, number.minor));
  }
  for (int slot : {0, 1}) {
    if (!options_.rootfs_devices[slot].empty()) {
      OTA_ASSIGN_OR_RETURN(rootfs_[slot], DescribeSpec(options_.rootfs_devices[slot].string(),
                                                       StrCat("cboot: slot ", slot, " rootfs")));
    } else {
      if (active.disk.empty()) {
        return absl::FailedPreconditionError(
            StrCat("cboot: running rootfs ", active.node.string(),
                   " is not a partition; set the slot devices explicitly"));
      }
      OTA_ASSIGN_OR_RETURN(rootfs_[slot], DescribePartition(active.disk, slot + 1));
    }
  }
  // nvbootctrl and the mounted root must agree, or we would write over the running system.
  const BlockDevice& expected = rootfs_[current_];
  if (expected.major != active.major || expected.minor != active.minor) {
    return absl::FailedPreconditionError(
        StrCat("cboot: nvbootctrl says slot ", current_, " (", expected.node.string(),
               ") is running, but the root file system is ", active.node.string()));
  }
  if (rootfs_[0].major == rootfs_[1].major && rootfs_[0].minor == rootfs_[1].minor) {
    return absl::FailedPreconditionError(
        StrCat("cboot: both slots resolve to ", rootfs_[0].node.string()));
  }
  const bool external = active.disk.rfind("nvme", 0) == 0;
  for (int slot : {0, 1}) {
    stdfs::path boot = options_.boot_devices[slot];
    if (boot.empty() && external) boot = StrCat("/dev/mmcblk0p", slot + 1);
    if (boot.empty()) continue;
    OTA_ASSIGN_OR_RETURN(boot_[slot],
                         DescribeSpec(boot.string(), StrCat("cboot: slot ", slot, " boot")));
  }
  log::Info("cboot slots", {{"current", SlotName(current_)},
                            {"slot0", rootfs_[0].node.string()},
                            {"slot1", rootfs_[1].node.string()},
                            {"external_rootfs", boot_[0].has_value() ? "yes" : "no"}});
  return absl::OkStatus();
}

absl::StatusOr<BootState> CbootBootController::ConfirmBoot() {
  std::lock_guard<std::mutex> lock(mu_);
  if (confirmed_.has_value()) return *confirmed_;
  absl::StatusOr<BootState> state = ConfirmBootLocked();
  if (state.ok()) confirmed_ = *state;
  return state;
}

absl::StatusOr<SlotState> CbootBootController::ReadStandbyStateReadOnly() {
  OTA_ASSIGN_OR_RETURN(
      MountedFileSystem mounted,
      MountedFileSystem::Mount(rootfs_[standby()].node, StandbyMountPoint(), ReadOnlyMountSpec()));
  absl::StatusOr<SlotState> state = StoreAt(mounted.target()).Load();
  OTA_RETURN_IF_ERROR(mounted.SyncAndUnmount());
  return state;
}

absl::StatusOr<BootState> CbootBootController::ConfirmBootLocked() {
  OTA_RETURN_IF_ERROR(WithContext(ResolveDevices(), "cboot: finding the A/B rootfs slots"));
  // A killed predecessor may have left the standby mounted.
  OTA_RETURN_IF_ERROR(UnmountAllUnder(options_.mount_dir));
  SlotStateStore store = ActiveStore();
  OTA_ASSIGN_OR_RETURN(SlotState state, store.Load());
  const std::string current = SlotName(current_);
  if (!state.slot_in_use.empty() && state.slot_in_use != "0" && state.slot_in_use != "1") {
    log::Warning("ignoring a corrupt slot_in_use",
                 {{"file", (store.dir() / SlotStateStore::kSlotInUseFile).string()},
                  {"value", state.slot_in_use}});
    state.slot_in_use.clear();
  }

  BootState boot;
  boot.active_slot = current;
  boot.version = state.version;
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
    // First start on the slot we switched to: it works, tell CBoot to keep it.
    OTA_ASSIGN_OR_RETURN(bool marked, nvbootctrl_.IsSlotMarkedSuccessful(current_));
    if (!marked) OTA_RETURN_IF_ERROR(nvbootctrl_.MarkBootSuccessful());
    Step("confirm:1");
    OTA_RETURN_IF_ERROR(store.WriteFailureReason(""));
    OTA_RETURN_IF_ERROR(store.WriteStatus(SlotStatus::kSuccess));
    log::Info("new slot confirmed", {{"slot", current}, {"version", state.version}});
    boot.status = SlotStatus::kSuccess;
    return boot;
  }

  if (state.slot_in_use != current) {
    // An update or rollback targeted the other slot, and we are still (or again) here: CBoot
    // fell back, or the operation never reached the switch.
    SlotStatus outcome = SlotStatus::kFailure;
    std::string other_version;
    absl::StatusOr<SlotState> other = ReadStandbyStateReadOnly();
    if (other.ok()) {
      if (other->status == SlotStatus::kRollbacking) outcome = SlotStatus::kRollbackFailure;
      other_version = other->version;
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
              current, " (", rootfs_[current_].node.string(), ")");
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

absl::StatusOr<std::filesystem::path> CbootBootController::PrepareStandby(
    std::string_view version, std::span<const std::string_view> keep_top_level) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!confirmed_.has_value()) {
    return absl::FailedPreconditionError("cboot: ConfirmBoot was not called");
  }
  if (standby_mount_.has_value()) {
    OTA_RETURN_IF_ERROR(standby_mount_->SyncAndUnmount());
    standby_mount_.reset();
  }
  prepared_ = false;
  committed_ = false;
  const int slot = standby();
  OTA_RETURN_IF_ERROR(nvbootctrl_.SetSlotAsUnbootable(slot));
  Step("prepare:1");
  OTA_RETURN_IF_ERROR(ActiveStore().WriteSlotInUse(SlotName(slot)));
  Step("prepare:2");
  OTA_RETURN_IF_ERROR(UnmountAllUnder(options_.mount_dir));
  StandbyPrepareOptions prepare;
  prepare.mount_dir = StandbyMountPoint();
  OTA_ASSIGN_OR_RETURN(MountedFileSystem mounted,
                       PrepareStandbyFileSystem(rootfs_[slot], keep_top_level, prepare));
  // A standby that had no file system got a fresh UUID: fstab must name that one.
  OTA_ASSIGN_OR_RETURN(std::optional<Ext4Identity> identity, ReadExt4Identity(rootfs_[slot].node));
  if (identity.has_value()) {
    rootfs_[slot].fs_type = "ext4";
    rootfs_[slot].fs_uuid = identity->uuid;
    rootfs_[slot].fs_label = identity->label;
  }
  standby_version_ = std::string(version);
  OTA_RETURN_IF_ERROR(WriteStandbyState(mounted.target(), SlotStatus::kUpdating));
  Step("prepare:3");
  stdfs::path root = mounted.target();
  standby_mount_ = std::move(mounted);
  prepared_ = true;
  log::Info(
      "standby prepared",
      {{"slot", SlotName(slot)}, {"device", rootfs_[slot].node.string()}, {"version", version}});
  return root;
}

absl::Status CbootBootController::WriteStandbyState(const stdfs::path& root, SlotStatus status) {
  {
    // The image may carry its own ota-status: ours win, in a real directory of the slot.
    OTA_ASSIGN_OR_RETURN(fs::RootedDir dir, fs::RootedDir::Open(root));
    absl::StatusOr<struct stat> st = dir.Lstat(kStatusDir);
    if (st.ok() && !S_ISDIR(st->st_mode)) OTA_RETURN_IF_ERROR(dir.RemoveAll(kStatusDir));
  }
  SlotStateStore store = StoreAt(root);
  OTA_RETURN_IF_ERROR(store.WriteStatus(status));
  if (status == SlotStatus::kUpdating) OTA_RETURN_IF_ERROR(store.WriteVersion(standby_version_));
  OTA_RETURN_IF_ERROR(store.WriteSlotInUse(SlotName(standby())));
  return store.WriteFailureReason("");
}

absl::Status CbootBootController::RewriteExtlinux(const stdfs::path& root) {
  OTA_RETURN_IF_ERROR(CheckRealDirs(root, "boot/extlinux"));
  OTA_ASSIGN_OR_RETURN(fs::RootedDir dir, fs::RootedDir::Open(root));
  absl::StatusOr<std::string> conf = dir.ReadFile(kExtlinuxConf);
  if (!conf.ok()) {
    return absl::InvalidArgumentError(
        StrCat("the new image has no usable /", kExtlinuxConf, ": ", conf.status().message()));
  }
  const BlockDevice& device = rootfs_[standby()];
  if (device.partuuid.empty()) {
    return absl::FailedPreconditionError(
        StrCat("cboot: no PARTUUID for standby ", device.node.string()));
  }
  absl::StatusOr<ExtlinuxRewrite> rewritten = RewriteExtlinuxRoot(*conf, device.partuuid);
  if (!rewritten.ok()) {
    return WithContext(rewritten.status(), StrCat("rewriting ", dir.Describe(kExtlinuxConf)));
  }
  OTA_RETURN_IF_ERROR(dir.RewriteFileDurably(kExtlinuxConf, rewritten->content));
  log::Info("extlinux.conf points at the standby",
            {{"root", StrCat("PARTUUID=", device.partuuid)},
             {"append_lines", std::to_string(rewritten->append_lines)}});
  return absl::OkStatus();
}

absl::Status CbootBootController::MergeStandbyFstab(const stdfs::path& root) {
  OTA_ASSIGN_OR_RETURN(fs::RootedDir dir, fs::RootedDir::Open(root));
  absl::StatusOr<std::string> image_fstab = dir.ReadFile("etc/fstab");
  if (absl::IsNotFound(image_fstab.status())) return absl::OkStatus();  // nothing to merge
  if (!image_fstab.ok()) return image_fstab.status();
  absl::StatusOr<std::string> active_fstab = fs::ReadFile(options_.active_root / "etc/fstab");
  if (!active_fstab.ok() && !absl::IsNotFound(active_fstab.status())) {
    return active_fstab.status();
  }
  OTA_RETURN_IF_ERROR(CheckRealDirs(root, "etc"));
  FstabMergeInput input;
  const std::string active_text = active_fstab.ok() ? *active_fstab : std::string();
  input.active_fstab = active_text;
  input.image_fstab = *image_fstab;
  auto spec_of = [](const BlockDevice& device) {
    return device.fs_uuid.empty() ? StrCat("PARTUUID=", device.partuuid)
                                  : StrCat("UUID=", device.fs_uuid);
  };
  input.active_root_spec = spec_of(rootfs_[current_]);
  input.standby_root_spec = spec_of(rootfs_[standby()]);
  input.shared_boot = false;  // /boot lives inside each rootfs on Jetson
  OTA_ASSIGN_OR_RETURN(std::string merged, MergeFstab(input));
  return dir.RewriteFileDurably("etc/fstab", merged);
}

absl::Status CbootBootController::MirrorBootToEmmc(const stdfs::path& root) {
  const std::optional<BlockDevice>& boot = boot_[standby()];
  if (!boot.has_value()) return absl::OkStatus();
  OTA_RETURN_IF_ERROR(CheckRealDirs(root, "boot"));
  OTA_ASSIGN_OR_RETURN(
      MountedFileSystem mounted,
      MountedFileSystem::Mount(boot->node, StandbyBootMountPoint(), StandbyMountSpec()));
  // The eMMC copy is exactly the standby's /boot: old files removed, then copied with modes,
  // owners, links and times (what `cp -rdpT` plus the delete pass did upstream).
  const stdfs::path target = mounted.target() / "boot";
  OTA_RETURN_IF_ERROR(
      RunProgramChecked({"rm", "-rf", "--one-file-system", "--", target.string()}, kCopyTimeout)
          .status());
  OTA_RETURN_IF_ERROR(
      RunProgramChecked({"cp", "-a", "-T", "--", (root / "boot").string(), target.string()},
                        kCopyTimeout)
          .status());
  OTA_RETURN_IF_ERROR(mounted.SyncAndUnmount());
  log::Info("standby /boot mirrored to eMMC", {{"device", boot->node.string()}});
  return absl::OkStatus();
}

absl::Status CbootBootController::CommitSwitch() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!prepared_ || !standby_mount_.has_value()) {
    return absl::FailedPreconditionError("cboot: no standby prepared");
  }
  const stdfs::path root = standby_mount_->target();
  // The image may carry its own ota-status files: ours win.
  OTA_RETURN_IF_ERROR(WriteStandbyState(root, SlotStatus::kUpdating));
  Step("commit:1");
  OTA_RETURN_IF_ERROR(RewriteExtlinux(root));
  OTA_RETURN_IF_ERROR(MergeStandbyFstab(root));
  Step("commit:2");
  OTA_RETURN_IF_ERROR(MirrorBootToEmmc(root));
  Step("commit:3");
  OTA_RETURN_IF_ERROR(standby_mount_->SyncAndUnmount());
  standby_mount_.reset();
  Step("commit:4");
  OTA_RETURN_IF_ERROR(nvbootctrl_.SetActiveBootSlot(standby()));
  committed_ = true;
  Step("commit:5");
  log::Info("boot switch committed: CBoot tries the standby next",
            {{"slot", SlotName(standby())}, {"version", standby_version_}});
  return absl::OkStatus();
}

absl::Status CbootBootController::OnUpdateFailed(SlotStatus status) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!prepared_) return absl::FailedPreconditionError("cboot: no standby prepared");
  absl::Status result = absl::OkStatus();
  if (committed_) result.Update(nvbootctrl_.SetSlotAsUnbootable(standby()));
  if (standby_mount_.has_value()) {
    result.Update(standby_mount_->SyncAndUnmount());
    standby_mount_.reset();
  }
  SlotStateStore store = ActiveStore();
  OTA_RETURN_IF_ERROR(
      store.WriteFailureReason(StrCat("update of slot ", standby(), " to version ",
                                      standby_version_, " ended with ", SlotStatusName(status))));
  OTA_RETURN_IF_ERROR(store.WriteStatus(status));
  OTA_RETURN_IF_ERROR(store.WriteSlotInUse(SlotName(current_)));
  prepared_ = false;
  committed_ = false;
  return result;
}

absl::Status CbootBootController::CheckRollbackPossibleLocked() {
  if (!confirmed_.has_value()) {
    return absl::FailedPreconditionError("cboot: ConfirmBoot was not called");
  }
  if (prepared_) return absl::FailedPreconditionError("cboot: an update is in progress");
  const int slot = standby();
  OTA_ASSIGN_OR_RETURN(bool bootable, nvbootctrl_.IsSlotBootable(slot));
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

absl::Status CbootBootController::CheckRollbackPossible() {
  std::lock_guard<std::mutex> lock(mu_);
  return CheckRollbackPossibleLocked();
}

absl::Status CbootBootController::CommitRollback() {
  std::lock_guard<std::mutex> lock(mu_);
  OTA_RETURN_IF_ERROR(CheckRollbackPossibleLocked());
  const int slot = standby();
  SlotStateStore active = ActiveStore();
  auto fail = [&](const absl::Status& error) {
    // Not switched: we stay here and report why.
    (void)active.WriteFailureReason(StrCat("rollback to slot ", slot, ": ", error.message()));
    (void)active.WriteStatus(SlotStatus::kRollbackFailure);
    (void)active.WriteSlotInUse(SlotName(current_));
    return error;
  };
  if (absl::Status s = active.WriteSlotInUse(SlotName(slot)); !s.ok()) return fail(s);
  Step("rollback:1");
  {
    absl::StatusOr<MountedFileSystem> mounted =
        MountedFileSystem::Mount(rootfs_[slot].node, StandbyMountPoint(), StandbyMountSpec());
    if (!mounted.ok()) return fail(mounted.status());
    SlotStateStore store = StoreAt(mounted->target());
    absl::Status written = store.WriteStatus(SlotStatus::kRollbacking);
    written.Update(store.WriteSlotInUse(SlotName(slot)));
    written.Update(mounted->SyncAndUnmount());
    if (!written.ok()) return fail(written);
  }
  Step("rollback:2");
  if (absl::Status s = nvbootctrl_.SetActiveBootSlot(slot); !s.ok()) return fail(s);
  Step("rollback:3");
  log::Info("rollback committed: CBoot tries the other slot next", {{"slot", SlotName(slot)}});
  return absl::OkStatus();
}

absl::Status CbootBootController::Reboot() {
  if (options_.reboot_hook) return options_.reboot_hook();
  log::Info("rebooting");
  return RunProgramChecked({"reboot"}).status();
}

}  // namespace

absl::StatusOr<std::unique_ptr<BootController>> CreateCbootBootController(CbootOptions options) {
  if (options.nvbootctrl.empty()) return absl::InvalidArgumentError("cboot: empty nvbootctrl");
  if (options.active_root.empty() || !options.active_root.is_absolute()) {
    return absl::InvalidArgumentError(
        StrCat("cboot: active root '", options.active_root.string(), "' must be absolute"));
  }
  if (options.mount_dir.empty() || !options.mount_dir.is_absolute()) {
    return absl::InvalidArgumentError(
        StrCat("cboot: mount dir '", options.mount_dir.string(), "' must be absolute"));
  }
  if (options.rootfs_devices[0].empty() != options.rootfs_devices[1].empty()) {
    return absl::InvalidArgumentError("cboot: give both slot rootfs devices or neither");
  }
  if (options.boot_devices[0].empty() != options.boot_devices[1].empty()) {
    return absl::InvalidArgumentError("cboot: give both slot boot devices or neither");
  }
  return std::make_unique<CbootBootController>(std::move(options));
}

}  // namespace ota::boot
