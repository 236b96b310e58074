#include "otaclient/boot/grub_boot_controller.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <system_error>
#include <vector>

#include "common/fs/fs.h"
#include "common/fs/rooted.h"
#include "common/log/log.h"
#include "common/sys/command.h"
#include "common/util/errors.h"
#include "common/util/strings.h"
#include "common/util/text_fields.h"
#include "otaclient/boot/grub_menu.h"

namespace ota::boot {
namespace {

namespace stdfs = std::filesystem;

constexpr std::string_view kKernelName = "vmlinuz";
constexpr std::string_view kInitrdName = "initrd.img";
constexpr std::string_view kDistroBackupName = "grub.cfg.otaclient-distro-backup";

// `path` relative to a RootedDir with every symlink of the last component followed inside that
// root (absolute targets are relative to the root, as when the slot is booted). Intermediate
// components are resolved by RootedDir itself.
absl::StatusOr<std::string> ResolveInRoot(const fs::RootedDir& root, std::string path) {
  for (int hops = 0; hops < 16; ++hops) {
    absl::StatusOr<struct stat> st = root.Lstat(path);
    if (!st.ok()) return st.status();
    if (!S_ISLNK(st->st_mode)) {
      if (!S_ISREG(st->st_mode)) {
        return absl::FailedPreconditionError(StrCat(root.Describe(path), " is not a regular file"));
      }
      return path;
    }
    OTA_ASSIGN_OR_RETURN(std::string target, root.ReadLink(path));
    stdfs::path next = (!target.empty() && target.front() == '/')
                           ? stdfs::path(target).relative_path()
                           : stdfs::path(path).parent_path() / target;
    std::string normal = next.lexically_normal().string();
    while (normal.rfind("../", 0) == 0) normal.erase(0, 3);  // ".." stops at the root
    if (normal.empty() || normal == "." || normal == "..") {
      return absl::FailedPreconditionError(StrCat(root.Describe(path), ": bad symlink"));
    }
    path = normal;
  }
  return absl::FailedPreconditionError(StrCat(root.Describe(path), ": too many symlinks"));
}

struct KernelFiles {
  std::string kernel;  // resolved, relative to the root
  std::string initrd;  // "" none
};

// The initrd that goes with a kernel: vmlinuz-<ver> → initrd.img-<ver>, vmlinuz → initrd.img.
std::string FindInitrdFor(const fs::RootedDir& root, std::string_view kernel_rel) {
  stdfs::path kernel(kernel_rel);
  std::string name = kernel.filename().string();
  std::vector<std::string> candidates;
  if (name.rfind("vmlinuz-", 0) == 0) {
    candidates.push_back((kernel.parent_path() / StrCat("initrd.img-", name.substr(8))).string());
  }
  candidates.push_back((kernel.parent_path() / "initrd.img").string());
  for (const std::string& candidate : candidates) {
    absl::StatusOr<std::string> resolved = ResolveInRoot(root, candidate);
    if (resolved.ok()) return *resolved;
  }
  return {};
}

// The kernel a rootfs carries in its own /boot: boot/vmlinuz (usually a symlink), else the one
// boot/vmlinuz-* (several: the highest name).
absl::StatusOr<KernelFiles> FindSlotKernel(const fs::RootedDir& root) {
  KernelFiles files;
  absl::StatusOr<std::string> kernel = ResolveInRoot(root, "boot/vmlinuz");
  if (!kernel.ok()) {
    std::vector<std::string> versioned;
    std::error_code ec;
    for (const stdfs::directory_entry& entry :
         stdfs::directory_iterator(root.root() / "boot", ec)) {
      std::string name = entry.path().filename().string();
      if (name.rfind("vmlinuz-", 0) == 0) versioned.push_back(name);
    }
    std::sort(versioned.begin(), versioned.end());
    for (auto it = versioned.rbegin(); it != versioned.rend() && !kernel.ok(); ++it) {
      kernel = ResolveInRoot(root, StrCat("boot/", *it));
    }
    if (!kernel.ok()) {
      return absl::FailedPreconditionError(
          StrCat("no kernel in ", root.Describe("boot"), " (expected vmlinuz or vmlinuz-*)"));
    }
  }
  files.kernel = *kernel;
  files.initrd = FindInitrdFor(root, files.kernel);
  return files;
}

absl::Status RemoveDurably(const stdfs::path& path) {
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoStatus(errno, StrCat("remove ", path.string()));
  }
  return fs::SyncDir(path.parent_path());
}

// Copies root/rel to `dest` atomically and durably (temp beside it, fsync, rename, dir fsync).
absl::Status CopyOut(const fs::RootedDir& root, std::string_view rel, const stdfs::path& dest) {
  OTA_ASSIGN_OR_RETURN(fs::UniqueFd in, root.OpenRead(rel));
  std::error_code ec;
  stdfs::create_directories(dest.parent_path(), ec);
  if (ec) return ErrnoStatus(ec.value(), StrCat("create ", dest.parent_path().string()));
  const stdfs::path temp = dest.string() + ".ota-new";
  fs::UniqueFd out(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!out.valid()) return ErrnoStatus(errno, StrCat("create ", temp.string()));
  std::vector<char> buffer(1 << 20);
  while (true) {
    ssize_t n = ::read(in.get(), buffer.data(), buffer.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, StrCat("read ", root.Describe(rel)));
    }
    if (n == 0) break;
    OTA_RETURN_IF_ERROR(fs::WriteAll(out.get(), buffer.data(), static_cast<size_t>(n),
                                     StrCat("write ", temp.string())));
  }
  if (::fsync(out.get()) != 0) return ErrnoStatus(errno, StrCat("fsync ", temp.string()));
  out.Reset();
  if (std::rename(temp.c_str(), dest.c_str()) != 0) {
    return ErrnoStatus(errno, StrCat("rename ", temp.string(), " to ", dest.string()));
  }
  return fs::SyncDir(dest.parent_path());
}

// Installs the kernel (and initrd, or none) found in `root` as the boot files of a slot.
absl::Status InstallKernelFiles(const fs::RootedDir& root, const KernelFiles& files,
                                const stdfs::path& slot_dir) {
  OTA_RETURN_IF_ERROR(CopyOut(root, files.kernel, slot_dir / std::string(kKernelName)));
  if (files.initrd.empty()) return RemoveDurably(slot_dir / std::string(kInitrdName));
  return CopyOut(root, files.initrd, slot_dir / std::string(kInitrdName));
}

}  // namespace

GrubBootController::GrubBootController(GrubBootOptions options, SlotLayout layout)
    : options_(std::move(options)), layout_(std::move(layout)), env_(options_.grubenv) {}

absl::StatusOr<std::unique_ptr<GrubBootController>> GrubBootController::Create(
    GrubBootOptions options) {
  if (options.boot_dir.empty()) return absl::InvalidArgumentError("grub: empty boot dir");
  if (options.grubenv.empty()) options.grubenv = options.boot_dir / "grub" / "grubenv";
  LayoutOptions layout_options;
  layout_options.paths = options.system;
  layout_options.boot_mount_point = options.boot_dir;
  layout_options.slot_override = options.slot_override;
  OTA_ASSIGN_OR_RETURN(SlotLayout layout, DetectSlotLayout(layout_options));
  if (!layout.boot.has_value()) {
    return absl::FailedPreconditionError(
        StrCat("grub: ", options.boot_dir.string(),
               " is not a separate partition; the GRUB A/B layout needs a shared boot partition "
               "holding GRUB, its environment block and the slots' kernels"));
  }
  for (const BlockDevice* device : {&layout.active, &layout.standby}) {
    if (device->partuuid.empty()) {
      return absl::FailedPreconditionError(
          StrCat("grub: ", device->node.string(),
                 " has no partition UUID (a GPT disk is needed for root=PARTUUID=)"));
    }
  }
  log::Info("grub slot layout", {{"active_slot", layout.active_slot},
                                 {"active", layout.active.node.string()},
                                 {"standby", layout.standby.node.string()},
                                 {"boot", layout.boot->node.string()}});
  return std::unique_ptr<GrubBootController>(
      new GrubBootController(std::move(options), std::move(layout)));
}

stdfs::path GrubBootController::SlotDir(std::string_view slot) const {
  return options_.boot_dir / "ota-slots" / StrCat("slot_", slot);
}

absl::Status GrubBootController::WriteMenuLocked(std::string_view fallback_slot) {
  std::string kernel_args;
  if (options_.kernel_args.has_value()) {
    kernel_args = *options_.kernel_args;
  } else {
    absl::StatusOr<std::string> cmdline = fs::ReadFile(options_.system.cmdline);
    if (cmdline.ok()) kernel_args = CarryOverKernelArgs(*cmdline);
  }
  GrubMenuConfig config;
  config.fallback_default = EntryId(fallback_slot);
  config.panic_seconds = options_.panic_seconds;
  config.serial_console = kernel_args.find("console=ttyS") != std::string::npos;
  for (std::string_view slot : {"a", "b"}) {
    GrubMenuEntry entry;
    entry.id = EntryId(slot);
    entry.title = StrCat("otaclient slot ", slot == "a" ? "A" : "B");
    const std::string dir = StrCat("/ota-slots/slot_", slot, "/");
    entry.kernel = StrCat(dir, kKernelName);
    std::error_code ec;
    if (stdfs::exists(SlotDir(slot) / std::string(kInitrdName), ec)) {
      entry.initrd = StrCat(dir, kInitrdName);
    }
    entry.root_partuuid = layout_.slot(slot).partuuid;
    entry.kernel_args = kernel_args;
    config.entries.push_back(std::move(entry));
  }
  OTA_ASSIGN_OR_RETURN(std::string menu, RenderGrubMenu(config));
  return fs::WriteFileAtomic(GrubCfg(), menu);
}

absl::Status GrubBootController::InstallRunningKernelLocked() {
  const std::string active = layout_.active_slot;
  std::string boot_image;
  absl::StatusOr<std::string> cmdline = fs::ReadFile(options_.system.cmdline);
  if (cmdline.ok()) boot_image = KernelCmdlineValue(*cmdline, "BOOT_IMAGE").value_or("");
  if (!boot_image.empty() && boot_image.front() == '(') {  // "(hd0,gpt2)/boot/vmlinuz"
    size_t close = boot_image.find(')');
    boot_image = close == std::string::npos ? "" : boot_image.substr(close + 1);
  }
  std::string rel_image = stdfs::path(boot_image).relative_path().lexically_normal().string();

  // The rootfs's own /boot is hidden under the boot partition's mount: look through a
  // non-recursive read-only bind mount of the active root.
  {
    MountSpec bind;
    bind.fs_type = "none";
    bind.flags = MS_BIND;
    const stdfs::path view_dir = options_.mount_dir / "active_view";
    OTA_RETURN_IF_ERROR(UnmountAllUnder(view_dir));
    OTA_ASSIGN_OR_RETURN(MountedFileSystem view,
                         MountedFileSystem::Mount(options_.active_root, view_dir, bind));
    if (::mount(nullptr, view_dir.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) !=
        0) {
      return ErrnoStatus(errno, StrCat("remount ", view_dir.string(), " read-only"));
    }
    OTA_ASSIGN_OR_RETURN(fs::RootedDir root, fs::RootedDir::Open(view_dir));
    absl::StatusOr<KernelFiles> files = absl::NotFoundError("no BOOT_IMAGE");
    if (!rel_image.empty() && rel_image != ".") {
      absl::StatusOr<std::string> kernel = ResolveInRoot(root, rel_image);
      if (kernel.ok()) files = KernelFiles{*kernel, FindInitrdFor(root, *kernel)};
    }
    if (!files.ok() && rel_image.empty()) files = FindSlotKernel(root);
    if (files.ok()) {
      log::Info("installing the running kernel for its slot",
                {{"slot", active}, {"kernel", root.Describe(files->kernel)}});
      return InstallKernelFiles(root, *files, SlotDir(active));
    }
  }
  // Distro layout: the kernel GRUB booted lives on the boot partition itself.
  if (!rel_image.empty() && rel_image != ".") {
    OTA_ASSIGN_OR_RETURN(fs::RootedDir boot_root, fs::RootedDir::Open(options_.boot_dir));
    absl::StatusOr<std::string> kernel = ResolveInRoot(boot_root, rel_image);
    if (kernel.ok()) {
      KernelFiles files{*kernel, FindInitrdFor(boot_root, *kernel)};
      log::Info("installing the running kernel for its slot",
                {{"slot", active}, {"kernel", boot_root.Describe(files.kernel)}});
      return InstallKernelFiles(boot_root, files, SlotDir(active));
    }
  }
  return absl::FailedPreconditionError(
      StrCat("grub: cannot find the running kernel (BOOT_IMAGE=", boot_image, ") in ",
             options_.active_root.string(), "/boot or on the boot partition ",
             options_.boot_dir.string()));
}

absl::Status GrubBootController::ImportPythonStateLocked() {
  for (const std::string slot : {"a", "b"}) {
    const stdfs::path theirs = options_.boot_dir / StrCat("ota-slot_", slot);
    std::error_code ec;
    if (!stdfs::is_directory(theirs, ec)) continue;
    SlotStateStore ours = Store(slot);
    OTA_ASSIGN_OR_RETURN(SlotState existing, ours.Load());
    if (existing.status.has_value()) continue;  // ours wins
    auto read = [&theirs](std::string_view name) -> std::string {
      absl::StatusOr<std::string> text = fs::ReadFile(theirs / std::string(name));
      return text.ok() ? std::string(TrimSpace(*text)) : std::string();
    };
    // Upstream reads the status case-insensitively; unknown text counts as missing.
    std::string status_text = read("status");
    std::transform(status_text.begin(), status_text.end(), status_text.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    absl::StatusOr<SlotStatus> status = ParseSlotStatus(status_text);
    std::string version = read("version");
    if (version.size() > SlotStateStore::kMaxVersionBytes) {
      version.resize(SlotStateStore::kMaxVersionBytes);
    }
    const std::string in_use = read("slot_in_use");
    const std::string slot_in_use = in_use == "ota-slot_a"   ? "a"
                                    : in_use == "ota-slot_b" ? "b"
                                                             : "";
    const ReleaseInfo release = ParseVersionDetail(read("version_detail")).value_or(ReleaseInfo{});
    const std::string other = slot == "a" ? "b" : "a";
    if (status.ok() && *status == SlotStatus::kFailure && slot_in_use == other) {
      // Upstream marks the slot an update starts from FAILURE (its "last operation") and
      // keeps it; here the outcome lives on the target slot, and this one holds the image it
      // ran, a rollback target.
      status = SlotStatus::kSuccess;
    }
    if (status.ok()) OTA_RETURN_IF_ERROR(ours.WriteStatus(*status));
    OTA_RETURN_IF_ERROR(ours.WriteVersion(version));
    OTA_RETURN_IF_ERROR(ours.WriteRelease(release));
    if (!slot_in_use.empty()) OTA_RETURN_IF_ERROR(ours.WriteSlotInUse(slot_in_use));
    log::Info("took over the Python otaclient's slot state",
              {{"slot", slot},
               {"from", theirs.string()},
               {"status", status.ok() ? std::string(SlotStatusName(*status)) : "(none)"},
               {"version", version},
               {"slot_in_use", in_use}});
  }
  return absl::OkStatus();
}

absl::Status GrubBootController::EnsureManagedLocked() {
  absl::StatusOr<std::string> current = fs::ReadFile(GrubCfg());
  if (!current.ok() && !absl::IsNotFound(current.status())) return current.status();
  const bool managed = current.ok() && IsGeneratedGrubMenu(*current);
  std::error_code ec;
  const bool kernel_installed =
      stdfs::exists(SlotDir(layout_.active_slot) / std::string(kKernelName), ec);
  if (managed && kernel_installed) return env_.CreateIfMissing();

  log::Info("first start on a machine not yet managed: setting up the GRUB A/B layout",
            {{"grub_cfg", GrubCfg().string()}, {"active_slot", layout_.active_slot}});
  Step("init:begin");
  OTA_RETURN_IF_ERROR(ImportPythonStateLocked());
  if (!kernel_installed) OTA_RETURN_IF_ERROR(InstallRunningKernelLocked());
  Step("init:kernel");
  const stdfs::path backup = GrubCfg().parent_path() / std::string(kDistroBackupName);
  if (current.ok() && !managed && !stdfs::exists(backup, ec)) {
    OTA_RETURN_IF_ERROR(fs::WriteFileAtomic(backup, *current));
  }
  Step("init:backup");
  OTA_RETURN_IF_ERROR(env_.Update({{"saved_entry", EntryId(layout_.active_slot)}}, {"next_entry"}));
  Step("init:env");
  OTA_RETURN_IF_ERROR(WriteMenuLocked(layout_.active_slot));
  Step("init:menu");
  SlotStateStore store = Store(layout_.active_slot);
  OTA_ASSIGN_OR_RETURN(SlotState state, store.Load());
  if (!state.status.has_value()) OTA_RETURN_IF_ERROR(store.WriteStatus(SlotStatus::kInitialized));
  if (state.slot_in_use.empty()) OTA_RETURN_IF_ERROR(store.WriteSlotInUse(layout_.active_slot));
  Step("init:done");
  return absl::OkStatus();
}

absl::StatusOr<BootState> GrubBootController::ConfirmBoot() {
  std::lock_guard<std::mutex> lock(mu_);
  if (confirmed_.has_value()) return *confirmed_;
  absl::StatusOr<BootState> state = ConfirmBootLocked();
  if (state.ok()) confirmed_ = *state;
  return state;
}

absl::StatusOr<BootState> GrubBootController::ConfirmBootLocked() {
  OTA_RETURN_IF_ERROR(EnsureManagedLocked());
  const std::string active = layout_.active_slot;
  const std::string other = Standby();
  OTA_ASSIGN_OR_RETURN(GrubEnvMap env, env_.Load());
  OTA_ASSIGN_OR_RETURN(SlotState mine, Store(active).Load());
  OTA_ASSIGN_OR_RETURN(SlotState theirs, Store(other).Load());
  auto env_value = [&](const std::string& key) {
    auto it = env.find(key);
    return it == env.end() ? std::string() : it->second;
  };

  BootState state;
  state.active_slot = active;
  state.version = mine.version;
  state.release = mine.release;
  log::Info("booted slot", {{"slot", active},
                            {"device", layout_.active.node.string()},
                            {"version", mine.version},
                            {"saved_entry", env_value("saved_entry")}});

  if (mine.status == SlotStatus::kUpdating || mine.status == SlotStatus::kRollbacking) {
    if (confirmation_deferred()) {
      // Health-gated: saved_entry still names the old slot until CompleteConfirmation (GRUB
      // consumed the one-shot next_entry), so any reboot meanwhile returns there.
      log::Info("new slot booted; its confirmation waits for the health check", {{"slot", active}});
      state.status = *mine.status;
      state.confirmation_pending = true;
      return state;
    }
    OTA_RETURN_IF_ERROR(ConfirmActiveLocked());
    state.status = SlotStatus::kSuccess;
    return state;
  }
  const bool one_shot_armed = env_value("next_entry") == EntryId(other);
  if (theirs.status == SlotStatus::kUpdating || theirs.status == SlotStatus::kRollbacking) {
    if (one_shot_armed) {
      // otaclient restarted after the switch but before the reboot: nothing failed yet.
      log::Warning("switch to the other slot is armed; waiting for the reboot", {{"slot", other}});
      state.status = mine.status.value_or(SlotStatus::kInitialized);
      return state;
    }
    const bool rollback = theirs.status == SlotStatus::kRollbacking;
    // CommitSwitch records the standby as the slot in use right before arming the one-shot
    // boot: without that record the update was cut off (otaclient or the machine restarted)
    // while the standby was being written, and the new slot was never tried.
    const bool switched = rollback || mine.slot_in_use == other;
    const std::string which =
        StrCat(other, theirs.version.empty() ? "" : StrCat(" (version ", theirs.version, ")"));
    state.status = rollback ? SlotStatus::kRollbackFailure : SlotStatus::kFailure;
    state.failure_reason =
        switched ? StrCat(rollback ? "rollback to slot " : "new slot ", which,
                          " did not boot; running slot ", active)
                 : StrCat("update of slot ", which,
                          " was interrupted before the boot switch (otaclient or the machine "
                          "restarted); running slot ",
                          active);
    Step("confirm:fallback");
    OTA_RETURN_IF_ERROR(
        Store(other).WriteStatus(rollback ? SlotStatus::kRollbackFailure : SlotStatus::kFailure));
    OTA_RETURN_IF_ERROR(Store(other).WriteFailureReason(state.failure_reason));
    OTA_RETURN_IF_ERROR(Store(active).WriteSlotInUse(active));
    log::Warning("fell back to the old slot", {{"reason", state.failure_reason}});
    return state;
  }
  if (!mine.status.has_value()) {
    OTA_RETURN_IF_ERROR(Store(active).WriteStatus(SlotStatus::kInitialized));
    mine.status = SlotStatus::kInitialized;
  }
  state.status = *mine.status;
  // The outcome of the last operation on the other slot stays visible until the next one.
  if (theirs.status == SlotStatus::kFailure || theirs.status == SlotStatus::kAborted ||
      theirs.status == SlotStatus::kRollbackFailure) {
    state.status = *theirs.status;
    state.failure_reason = theirs.failure_reason.empty()
                               ? StrCat("last update of slot ", other, " failed")
                               : theirs.failure_reason;
  }
  return state;
}

absl::Status GrubBootController::ConfirmActiveLocked() {
  // The slot we were switched to came up with otaclient running: it is good.
  const std::string active = layout_.active_slot;
  Step("confirm:begin");
  OTA_RETURN_IF_ERROR(env_.Update({{"saved_entry", EntryId(active)}}, {}));
  Step("confirm:saved-entry");
  OTA_RETURN_IF_ERROR(Store(active).WriteStatus(SlotStatus::kSuccess));
  OTA_RETURN_IF_ERROR(Store(active).WriteFailureReason(""));
  OTA_RETURN_IF_ERROR(Store(active).WriteSlotInUse(active));
  Step("confirm:status");
  OTA_RETURN_IF_ERROR(WriteMenuLocked(active));  // a lost grubenv now falls back to us
  log::Info("new slot confirmed and made the default", {{"slot", active}});
  return absl::OkStatus();
}

absl::StatusOr<BootState> GrubBootController::CompleteConfirmation() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!confirmed_.has_value() || !confirmed_->confirmation_pending) {
    return absl::FailedPreconditionError("grub: no boot confirmation is pending");
  }
  OTA_RETURN_IF_ERROR(ConfirmActiveLocked());
  confirmed_->status = SlotStatus::kSuccess;
  confirmed_->confirmation_pending = false;
  return *confirmed_;
}

absl::Status GrubBootController::RejectNewSlot(std::string_view reason) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!confirmed_.has_value() || !confirmed_->confirmation_pending) {
    return absl::FailedPreconditionError("grub: no boot confirmation is pending");
  }
  const std::string active = layout_.active_slot;
  const std::string old = Standby();
  const SlotStatus outcome = confirmed_->status == SlotStatus::kRollbacking
                                 ? SlotStatus::kRollbackFailure
                                 : SlotStatus::kFailure;
  const std::string recorded = StrCat(kHealthCheckFailedPrefix, reason);
  // Everything on the shared boot partition: the old slot's ConfirmBoot reports this slot's
  // outcome (the last operation on the other slot), and expects to run.
  Step("reject:begin");
  OTA_RETURN_IF_ERROR(Store(active).WriteFailureReason(recorded));
  OTA_RETURN_IF_ERROR(Store(active).WriteStatus(outcome));
  OTA_RETURN_IF_ERROR(Store(active).WriteSlotInUse(old));
  OTA_RETURN_IF_ERROR(Store(old).WriteSlotInUse(old));
  Step("reject:status");
  // saved_entry was never moved here; make sure no one-shot boot is left either.
  OTA_RETURN_IF_ERROR(env_.Update({{"saved_entry", EntryId(old)}}, {"next_entry"}));
  Step("reject:env");
  log::Warning("new slot rejected: the next boot returns to the old slot",
               {{"slot", active}, {"old_slot", old}, {"reason", std::string(reason)}});
  confirmed_->confirmation_pending = false;
  confirmed_->status = outcome;
  confirmed_->failure_reason = recorded;
  return absl::OkStatus();
}

absl::StatusOr<stdfs::path> GrubBootController::PrepareStandby(
    std::string_view version, std::span<const std::string_view> keep_top_level) {
  OTA_ASSIGN_OR_RETURN(PreparedStandby prepared,
                       Prepare(version, keep_top_level, /*keep_contents=*/false));
  return prepared.root;
}

absl::StatusOr<PreparedStandby> GrubBootController::PrepareStandbyInPlace(
    std::string_view version, std::span<const std::string_view> keep_top_level) {
  return Prepare(version, keep_top_level, /*keep_contents=*/true);
}

absl::StatusOr<PreparedStandby> GrubBootController::Prepare(
    std::string_view version, std::span<const std::string_view> keep_top_level,
    bool keep_contents) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!confirmed_.has_value()) {
    return absl::FailedPreconditionError("grub: ConfirmBoot was not called");
  }
  const std::string standby = Standby();
  standby_prepared_ = false;  // until the standby is mounted
  // Unbootable first: nothing in grubenv points at the standby and its kernel is gone.
  Step("prepare:begin");
  OTA_RETURN_IF_ERROR(env_.Update({{"saved_entry", EntryId(layout_.active_slot)}}, {"next_entry"}));
  OTA_RETURN_IF_ERROR(RemoveDurably(SlotDir(standby) / std::string(kKernelName)));
  OTA_RETURN_IF_ERROR(RemoveDurably(SlotDir(standby) / std::string(kInitrdName)));
  Step("prepare:unbootable");
  SlotStateStore store = Store(standby);
  OTA_RETURN_IF_ERROR(store.WriteStatus(SlotStatus::kUpdating));
  OTA_RETURN_IF_ERROR(store.WriteVersion(version));
  OTA_RETURN_IF_ERROR(store.WriteRelease(standby_release()));
  OTA_RETURN_IF_ERROR(store.WriteFailureReason(""));
  OTA_RETURN_IF_ERROR(store.WriteSlotInUse(standby));
  Step("prepare:status");
  switch_committed_ = false;
  standby_version_ = std::string(version);

  const stdfs::path mount_point = options_.mount_dir / "standby_slot";
  standby_mount_.reset();
  StandbyPrepareOptions prepare;
  prepare.mount_dir = mount_point;
  prepare.force_format = options_.force_format;
  prepare.fallback_label = StrCat("rootfs_", standby);
  auto mount_standby = [&]() -> absl::StatusOr<StandbyFileSystem> {
    OTA_RETURN_IF_ERROR(UnmountAllUnder(mount_point));  // left over by a killed process
    if (keep_contents) {
      return PrepareStandbyFileSystemInPlace(layout_.standby, keep_top_level, prepare);
    }
    OTA_ASSIGN_OR_RETURN(MountedFileSystem fs,
                         PrepareStandbyFileSystem(layout_.standby, keep_top_level, prepare));
    return StandbyFileSystem{std::move(fs), false, "rebuild requested"};
  };
  absl::StatusOr<StandbyFileSystem> mounted = mount_standby();
  if (!mounted.ok()) {
    // Not prepared (nothing for the caller to mark failed): the standby stays unbootable and
    // says why; no update is in progress any more.
    absl::Status ended =
        EndUpdateLocked(SlotStatus::kFailure,
                        StrCat("update of slot ", standby, " to version ", version,
                               " failed preparing the standby: ", mounted.status().message()));
    if (!ended.ok()) {
      log::Error("could not mark the standby failed", {{"error", std::string(ended.message())}});
    }
    return mounted.status();
  }
  const bool kept = mounted->contents_kept;
  std::string reason = std::move(mounted->reason);
  standby_mount_.emplace(std::move(mounted->mount));
  standby_prepared_ = true;
  Step("prepare:mounted");
  log::Info("standby prepared", {{"slot", standby},
                                 {"device", layout_.standby.node.string()},
                                 {"version", version},
                                 {"contents", kept ? "kept" : "cleaned"}});
  return PreparedStandby{mount_point, kept, std::move(reason)};
}

// The standby's /etc/fstab and its kernel/initrd on the boot partition. The RootedDir (an open
// directory fd) is gone when this returns, so the standby can be unmounted.
absl::Status GrubBootController::WriteStandbyBootFilesLocked() {
  const std::string standby = Standby();
  OTA_ASSIGN_OR_RETURN(fs::RootedDir root, fs::RootedDir::Open(standby_mount_->target()));
  // /etc/fstab: root (and the shared /boot) must point at this slot's own devices.
  absl::StatusOr<std::string> image_fstab = root.ReadFile("etc/fstab");
  absl::StatusOr<std::string> active_fstab = fs::ReadFile(options_.active_root / "etc/fstab");
  if (image_fstab.ok() || active_fstab.ok()) {
    OTA_ASSIGN_OR_RETURN(std::optional<Ext4Identity> identity,
                         ReadExt4Identity(layout_.standby.node));
    if (!identity.has_value()) {
      return absl::InternalError(
          StrCat("grub: standby ", layout_.standby.node.string(), " lost its ext4 superblock"));
    }
    FstabMergeInput merge;
    merge.active_fstab = active_fstab.ok() ? std::string_view(*active_fstab) : "";
    merge.image_fstab = image_fstab.ok() ? std::string_view(*image_fstab) : "";
    merge.active_root_spec = StrCat("UUID=", layout_.active.fs_uuid);
    merge.standby_root_spec = StrCat("UUID=", identity->uuid);
    merge.shared_boot = true;
    OTA_ASSIGN_OR_RETURN(std::string merged, MergeFstab(merge));
    OTA_RETURN_IF_ERROR(root.MakeDirs("etc"));
    OTA_RETURN_IF_ERROR(root.RewriteFileDurably("etc/fstab", merged));
  }
  Step("commit:fstab");
  OTA_ASSIGN_OR_RETURN(KernelFiles files, FindSlotKernel(root));
  OTA_RETURN_IF_ERROR(InstallKernelFiles(root, files, SlotDir(standby)));
  return absl::OkStatus();
}

absl::Status GrubBootController::CommitSwitch() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!standby_prepared_ || !standby_mount_.has_value()) {
    return absl::FailedPreconditionError("grub: no standby prepared");
  }
  const std::string standby = Standby();
  Step("commit:begin");
  OTA_RETURN_IF_ERROR(WriteStandbyBootFilesLocked());
  Step("commit:kernel");

  OTA_RETURN_IF_ERROR(WriteMenuLocked(layout_.active_slot));
  Step("commit:menu");
  OTA_RETURN_IF_ERROR(standby_mount_->SyncAndUnmount());
  standby_mount_.reset();
  Step("commit:unmounted");
  OTA_RETURN_IF_ERROR(Store(layout_.active_slot).WriteSlotInUse(standby));
  OTA_RETURN_IF_ERROR(env_.Update({{"next_entry", EntryId(standby)}}, {}));
  switch_committed_ = true;
  Step("commit:armed");
  log::Info("boot switch committed: GRUB boots the standby once at next boot",
            {{"slot", standby}, {"version", standby_version_}});
  return absl::OkStatus();
}

absl::Status GrubBootController::OnUpdateFailed(SlotStatus status) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!standby_prepared_) return absl::FailedPreconditionError("grub: no standby prepared");
  return EndUpdateLocked(status, StrCat("update of slot ", Standby(), " to version ",
                                        standby_version_, " ended with ", SlotStatusName(status)));
}

absl::Status GrubBootController::EndUpdateLocked(SlotStatus status, std::string_view reason) {
  const std::string standby = Standby();
  standby_prepared_ = false;
  switch_committed_ = false;
  absl::Status unmounted =
      standby_mount_.has_value() ? standby_mount_->SyncAndUnmount() : absl::OkStatus();
  standby_mount_.reset();
  OTA_ASSIGN_OR_RETURN(GrubEnvMap env, env_.Load());
  if (env["next_entry"] == EntryId(standby)) {
    OTA_RETURN_IF_ERROR(env_.Update({}, {"next_entry"}));
  }
  OTA_RETURN_IF_ERROR(Store(standby).WriteStatus(status));
  OTA_RETURN_IF_ERROR(Store(standby).WriteFailureReason(reason));
  OTA_RETURN_IF_ERROR(Store(layout_.active_slot).WriteSlotInUse(layout_.active_slot));
  return unmounted;
}

absl::Status GrubBootController::CheckRollbackPossibleLocked() {
  if (!confirmed_.has_value()) {
    return absl::FailedPreconditionError("grub: ConfirmBoot was not called");
  }
  if (standby_prepared_) {
    return absl::FailedPreconditionError("rollback refused: an update is in progress");
  }
  const std::string other = Standby();
  OTA_ASSIGN_OR_RETURN(SlotState theirs, Store(other).Load());
  // SUCCESS: confirmed after an update; INITIALIZED: the slot this machine ran when otaclient
  // first took it over (it booted and ran, so it is a good image too).
  if (theirs.status != SlotStatus::kSuccess && theirs.status != SlotStatus::kInitialized) {
    return absl::FailedPreconditionError(
        StrCat("rollback refused: slot ", other, " does not hold a previous good image (status ",
               theirs.status ? SlotStatusName(*theirs.status) : std::string_view("none"), ")"));
  }
  std::error_code ec;
  if (!stdfs::exists(SlotDir(other) / std::string(kKernelName), ec)) {
    return absl::FailedPreconditionError(
        StrCat("rollback refused: slot ", other, " has no kernel in ", SlotDir(other).string()));
  }
  return absl::OkStatus();
}

absl::Status GrubBootController::CheckRollbackPossible() {
  std::lock_guard<std::mutex> lock(mu_);
  return CheckRollbackPossibleLocked();
}

absl::Status GrubBootController::CommitRollback() {
  std::lock_guard<std::mutex> lock(mu_);
  OTA_RETURN_IF_ERROR(CheckRollbackPossibleLocked());
  const std::string other = Standby();
  Step("rollback:begin");
  OTA_RETURN_IF_ERROR(Store(other).WriteStatus(SlotStatus::kRollbacking));
  OTA_RETURN_IF_ERROR(Store(other).WriteFailureReason(""));
  OTA_RETURN_IF_ERROR(Store(other).WriteSlotInUse(other));
  Step("rollback:status");
  OTA_RETURN_IF_ERROR(WriteMenuLocked(layout_.active_slot));
  OTA_RETURN_IF_ERROR(Store(layout_.active_slot).WriteSlotInUse(other));
  OTA_RETURN_IF_ERROR(env_.Update({{"next_entry", EntryId(other)}}, {}));
  Step("rollback:armed");
  log::Info("rollback committed: GRUB boots the other slot once at next boot", {{"slot", other}});
  return absl::OkStatus();
}

absl::Status GrubBootController::Reboot() {
  if (options_.reboot_hook) {
    log::Info("reboot (hook)");
    return options_.reboot_hook();
  }
  ::sync();
  log::Info("rebooting");
  OTA_ASSIGN_OR_RETURN(std::string out, sys::RunProgramChecked({"reboot"}));
  (void)out;
  return absl::OkStatus();
}

}  // namespace ota::boot
