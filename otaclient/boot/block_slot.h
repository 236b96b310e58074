// Working on a standby slot that is a block device: formatting it (keeping its identity),
// mounting it with safe options (RAII), syncing and unmounting, and the /etc/fstab merge for the
// image written into it. Backend-neutral: GRUB and CBoot both prepare their standby with these.
//
// Order a controller follows (the boot loader must never pick a half-written slot):
//   1. mark the standby unbootable in the boot loader and record UPDATING (slot_state_store.h)
//   2. PrepareStandbyFileSystem(): reformat (mkfs.ext4 -F, same UUID and label) or clean it
//   3. MountedFileSystem::Mount(standby, dir, kStandbyMountOptions) and write the image
//   4. MergeFstab() into <standby>/etc/fstab, MountedFileSystem::SyncAndUnmount()
//   5. only then switch the boot loader to try the standby once
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/sys/mount.h"
#include "otaclient/boot/slot_layout.h"

namespace ota::boot {

// The mount vocabulary of the boot backends (common/sys/mount.h).
using sys::MountedFileSystem;
using sys::MountSpec;
using sys::ReadOnlyMountSpec;
using sys::UnmountAllUnder;

// Mount flags/data used for a standby being written: nodev, nosuid off (the image has setuid
// files that must be written, not executed), noatime; ext4 data=ordered stays default so a crash
// never exposes stale blocks.
MountSpec StandbyMountSpec();  // rw, noatime, nodev
// A FAT boot partition (an EFI system partition, the Pi's system-boot): vfat, rw, noatime,
// nodev, nosuid, noexec, `quiet` (FAT has no owners or modes: chmod/chown succeed silently, so
// the durable temp + rename writes of common/fs work unchanged). Not the ext4 options
// (commit=, data=, journal_async_commit) the Python client passes, which vfat refuses.
// `fs_type` other than "vfat" exists for test machines whose kernel has no FAT driver (the
// partition is then an ext4 stand-in; same flags, no `quiet`).
MountSpec FatMountSpec(std::string_view fs_type = "vfat");

// mkfs.ext4 may take long on a large slot.
inline constexpr std::chrono::milliseconds kFormatTimeout = std::chrono::minutes(10);

// mkfs.ext4 -F on `device`, keeping `identity`'s UUID and label when given (so fstab entries,
// the boot menu and `search --fs-uuid` stay valid), else a fresh UUID and `fallback_label`.
// Refuses a device that is currently mounted anywhere (kFailedPrecondition), and formats
// nothing when `mountinfo` cannot be read or parsed (fails closed).
absl::Status FormatExt4(const BlockDevice& device, const std::optional<Ext4Identity>& identity,
                        std::string_view fallback_label = "",
                        const std::filesystem::path& mountinfo = "/proc/self/mountinfo");

// Gets the standby ready to be written and returns it mounted at `mount_dir` (refused with
// kFailedPrecondition when the device is mounted anywhere already, per `mountinfo`):
// when `device` holds a mountable ext4, it is mounted and emptied except the top-level entries
// in `keep_top_level` (resume data such as /.ota-resources); otherwise (no file system, corrupt,
// or `force_format`) it is reformatted keeping its identity, then mounted.
struct StandbyPrepareOptions {
  std::filesystem::path mount_dir;
  bool force_format = false;
  std::string fallback_label;  // label for a device that had no ext4 yet
  std::filesystem::path mountinfo = "/proc/self/mountinfo";
};
absl::StatusOr<MountedFileSystem> PrepareStandbyFileSystem(
    const BlockDevice& device, std::span<const std::string_view> keep_top_level,
    const StandbyPrepareOptions& options);

// For an in-place update: when `device` holds ext4, `e2fsck -n` finds it clean (checked before
// mounting) and it mounts, it is mounted with its contents kept; otherwise PrepareStandbyFileSystem
// (clean or reformat) and `reason` says why the contents could not be kept. A file system that
// e2fsck -n does not find clean is always reformatted (same UUID and label): removing its files
// would repair none of its damage.
struct StandbyFileSystem {
  MountedFileSystem mount;
  bool contents_kept = false;
  std::string reason;
};
absl::StatusOr<StandbyFileSystem> PrepareStandbyFileSystemInPlace(
    const BlockDevice& device, std::span<const std::string_view> keep_top_level,
    const StandbyPrepareOptions& options);

// ---- /etc/fstab ----

// One line of an fstab. Fields are kept decoded (\040 → space etc.); `raw` is the original line
// (comments and blank lines have only `raw`).
struct FstabLine {
  std::string raw;
  bool is_entry = false;
  std::string spec;         // "UUID=…", "/dev/sda1", "LABEL=…"
  std::string mount_point;  // "/", "/boot", "none" (swap)
  std::string fs_type;
  std::string options;
  std::string dump;    // "" when absent
  std::string passno;  // "" when absent
};
// Strict parse: an entry line needs at least spec, mount point and type; fields are separated by
// spaces/tabs; CR before LF is dropped; a NUL byte or a line of one/two fields is
// kInvalidArgument "<what>:<line>: …". Octal escapes \NNN are decoded.
absl::StatusOr<std::vector<FstabLine>> ParseFstab(std::string_view text, std::string_view what);
// Re-encodes an entry (spaces/tabs/backslashes/# as octal escapes), fields separated by a tab.
std::string FormatFstabEntry(const FstabLine& entry);

// The fstab for the standby slot:
//   - starts from the image's fstab (its comments, order and entries kept),
//   - the "/" entry gets `standby_root_spec` (e.g. "UUID=<standby fs uuid>"); an image without a
//     "/" entry gets the active one with the spec replaced,
//   - when `shared_boot` is true, the "/boot" (and "/boot/efi") entries are taken from the
//     active fstab (both slots share that partition), else the image's are kept,
//   - active entries whose mount point the image does not have are appended (site-specific
//     mounts survive updates), with any occurrence of `active_root_spec` replaced.
struct FstabMergeInput {
  std::string_view active_fstab;
  std::string_view image_fstab;
  std::string active_root_spec;   // "UUID=<active fs uuid>"
  std::string standby_root_spec;  // "UUID=<standby fs uuid>"
  bool shared_boot = true;
};
absl::StatusOr<std::string> MergeFstab(const FstabMergeInput& input);

}  // namespace ota::boot
