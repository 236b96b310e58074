// The GRUB boot backend for x86 PCs: a shared boot partition (GRUB, grubenv, per-slot kernels and
// state) plus two ext4 rootfs partitions A and B on one GPT disk.
//
// On the boot partition (mounted at `boot_dir`, GRUB's prefix is <boot_dir>/grub):
//   grub/grub.cfg                        our generated menu (grub_menu.h), both slots
//   grub/grub.cfg.otaclient-distro-backup  the distro's grub.cfg, kept once at first start
//   grub/grubenv                         saved_entry (confirmed slot), next_entry (one-shot)
//   ota-slots/slot_<x>/vmlinuz, initrd.img  the slot's kernel/initrd, copied from the slot's own
//                                        /boot when the slot is committed
//   ota-slots/slot_<x>/status, version, slot_in_use, failure_reason   (slot_state_store.h)
// Menu entry ids are "slot_a" and "slot_b"; slot a is the lower-numbered rootfs partition.
//
// Flow (each step durable before the next; a crash anywhere never makes GRUB boot a
// half-written slot):
//   first start on an unmanaged machine (grub.cfg not ours): the Python client's slot state
//     (<boot>/ota-slot_<x>/) imported when present, so its status, version and an update it
//     left at UPDATING are carried over (confirmed, or FAILURE when GRUB fell back); copy the
//     running kernel into ota-slots/slot_<active>/, back up the distro cfg, grubenv
//     saved_entry=<active>, write our menu atomically. Idempotent: an interrupted first start is
//     simply redone.
//   PrepareStandby: grubenv next_entry unset + saved_entry=<active> (nothing points at the
//     standby), standby's kernel removed from the boot partition, standby status UPDATING,
//     then mount + clean (or mkfs.ext4 keeping UUID/label) the standby.
//   CommitSwitch:  fstab merge (block_slot.h), kernel/initrd copied to ota-slots/slot_<standby>/,
//     menu rewritten, standby synced and unmounted, the active slot's slot_in_use set to the
//     standby, then grubenv next_entry=slot_<standby> (the switch: GRUB boots it once and
//     clears next_entry before booting).
//   ConfirmBoot on the new slot (status UPDATING/ROLLBACKING): saved_entry=<it>, SUCCESS.
//     Back on the old slot: the other slot's UPDATING becomes FAILURE, "new slot ... did not
//     boot" when slot_in_use says the switch was committed, else "update of slot ... was
//     interrupted before the boot switch" (a power cut or crash while the standby was written)
//     (ROLLBACKING → ROLLBACK_FAILURE). A one-shot still armed (otaclient restarted before the
//     reboot) is left alone.
//   Rollback: the other slot must be SUCCESS (or INITIALIZED: the slot otaclient took over at
//     first start) with its kernel present; then ROLLBACKING + next_entry like a switch.
//
// Kernel command line of each entry: root=PARTUUID=<slot partition>, the running kernel's other
// arguments (minus BOOT_IMAGE/root/panic) or `kernel_args`, and panic=<panic_seconds> so a
// kernel that panics resets into the fallback.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "otaclient/boot/block_slot.h"
#include "otaclient/boot/boot_controller.h"
#include "otaclient/boot/grub_env.h"
#include "otaclient/boot/slot_layout.h"
#include "otaclient/boot/slot_state_store.h"

namespace ota::boot {

struct GrubBootOptions {
  // mountinfo (active root and boot partition detection), cmdline, /sys, /dev. Tests point
  // mountinfo and cmdline at files describing the simulated boot.
  SystemPaths system;
  // Where the boot partition is mounted (otaclient flag --grub-boot-dir). Must be a separate
  // partition on the same disk as the slots.
  std::filesystem::path boot_dir = "/boot";
  // The environment block GRUB's load_env reads ($prefix/grubenv); default
  // <boot_dir>/grub/grubenv (flag --grub-env).
  std::filesystem::path grubenv;
  // Root of the running slot (delta source); "/" on a real machine.
  std::filesystem::path active_root = "/";
  // Where the standby and a read-only view of the active rootfs are mounted.
  std::filesystem::path mount_dir = "/run/otaclient/mnt";
  SlotOverride slot_override;
  // Extra kernel arguments for both entries; unset: carried over from the running cmdline.
  std::optional<std::string> kernel_args;
  int panic_seconds = 5;
  bool force_format = false;  // always mkfs.ext4 the standby instead of cleaning it
  // Reboot() runs this when set (tests); otherwise it runs `reboot`.
  std::function<absl::Status()> reboot_hook;
  // Called at each step ("init:…", "prepare:…", "commit:…", "confirm:…", "rollback:…"); tests
  // kill the process there to prove crash safety.
  std::function<void(std::string_view step)> step_hook;
};

class GrubBootController : public BootController {
 public:
  // Detects the slot layout (refuses a machine that is not A/B or has no separate boot
  // partition); touches nothing yet.
  static absl::StatusOr<std::unique_ptr<GrubBootController>> Create(GrubBootOptions options);

  absl::StatusOr<BootState> ConfirmBoot() override;
  std::filesystem::path ActiveRoot() const override { return options_.active_root; }
  absl::StatusOr<std::filesystem::path> PrepareStandby(
      std::string_view version, std::span<const std::string_view> keep_top_level) override;
  absl::StatusOr<PreparedStandby> PrepareStandbyInPlace(
      std::string_view version, std::span<const std::string_view> keep_top_level) override;
  absl::Status CommitSwitch() override;
  absl::Status OnUpdateFailed(SlotStatus status) override;
  absl::Status CheckRollbackPossible() override;
  absl::Status CommitRollback() override;
  absl::Status Reboot() override;
  bool SupportsDeferredConfirmation() const override { return true; }
  absl::StatusOr<BootState> CompleteConfirmation() override;
  absl::Status RejectNewSlot(std::string_view reason) override;

  const SlotLayout& layout() const { return layout_; }
  static std::string EntryId(std::string_view slot) { return "slot_" + std::string(slot); }

 private:
  GrubBootController(GrubBootOptions options, SlotLayout layout);
  // PrepareStandby, keeping the standby's contents when `keep_contents` and its file system is
  // fit (block_slot.h PrepareStandbyFileSystemInPlace).
  absl::StatusOr<PreparedStandby> Prepare(std::string_view version,
                                          std::span<const std::string_view> keep_top_level,
                                          bool keep_contents);

  void Step(std::string_view step) const {
    if (options_.step_hook) options_.step_hook(step);
  }
  std::filesystem::path GrubCfg() const { return options_.boot_dir / "grub" / "grub.cfg"; }
  std::filesystem::path SlotDir(std::string_view slot) const;
  SlotStateStore Store(std::string_view slot) const { return SlotStateStore(SlotDir(slot)); }
  std::string Standby() const { return layout_.standby_slot(); }

  absl::Status EnsureManagedLocked();
  // First start on a machine the Python otaclient managed: its per-slot state in
  // <boot>/ota-slot_<x>/ (status, version, version_detail, slot_in_use "ota-slot_<x>") becomes
  // ours for every slot that has none yet.
  absl::Status ImportPythonStateLocked();
  absl::Status WriteMenuLocked(std::string_view fallback_slot);
  absl::Status InstallRunningKernelLocked();
  absl::Status WriteStandbyBootFilesLocked();
  absl::Status CheckRollbackPossibleLocked();
  // Ends the update of the standby: no switch, status `status` with `reason`, unmounted.
  absl::Status EndUpdateLocked(SlotStatus status, std::string_view reason);
  absl::StatusOr<BootState> ConfirmBootLocked();
  // The running slot was switched to and came up: saved_entry, SUCCESS, menu fallback.
  absl::Status ConfirmActiveLocked();

  GrubBootOptions options_;
  SlotLayout layout_;
  GrubEnv env_;
  mutable std::mutex mu_;
  std::optional<BootState> confirmed_;
  std::optional<MountedFileSystem> standby_mount_;
  bool standby_prepared_ = false;
  bool switch_committed_ = false;
  std::string standby_version_;
};

}  // namespace ota::boot
