// The A/B layer of the boot backends whose slots carry their own state: two rootfs partitions,
// each with its own /boot and its status files in /boot/ota-status/ (status, version,
// slot_in_use, version_detail, failure_reason — the Python otaclient's format, so either client
// finalises the other's update). Jetson CBoot, Jetson UEFI (jetson_common.h) and Raspberry Pi
// (rpi_boot_controller.h) are RootfsAbPlatforms on it; GRUB keeps its slots' state on the shared
// /boot partition instead (grub_boot_controller.h).
//
// Slots are numbered 0 and 1; the platform names them in the status files ("0"/"1" on Jetson,
// "slot_a"/"slot_b" on the Pi) and says which partition of the running rootfs's disk each is
// (config can name them instead). An optional per-slot boot partition (a Jetson with its rootfs
// on NVMe reads /boot from the eMMC) gets a mirror of the standby's /boot.
//
// Update flow (every step durable before the next; a crash at any point leaves the machine
// booting the old slot until the very last step). Step names are what step_hook sees:
//   PrepareStandby  prepare:1  platform: nothing may boot the standby while it is written
//                   prepare:2  active slot_in_use := standby (a restart on the active slot now
//                              means "the operation did not finish")
//                   prepare:3  standby mounted and cleaned (keeping `keep_top_level`), or
//                              mkfs.ext4 (same UUID/label) when it has no usable file system
//                              (the platform may impose the label); its status UPDATING,
//                              version, release, slot_in_use := standby
//   CommitSwitch    commit:1   standby status files rewritten (an image may carry its own)
//                   commit:2   platform boot files of the standby (Jetson: extlinux.conf root=,
//                              fstab merge; Pi: fstab, flash-kernel); /boot/ota (ecu_info,
//                              proxy_info) copied from the active slot
//                   commit:3   per-slot boot partition: standby /boot mirrored onto it (before
//                              the switch on every platform: upstream's Jetson UEFI mirrors after
//                              it, which leaves a switched-to slot half-written when the copy
//                              fails)
//                   commit:4   platform firmware staged from the standby's /opt/ota/firmware
//                   commit:5   standby synced and unmounted
//                   commit:6   platform switch      <- the switch, the last step
// First start (ConfirmBoot): status UPDATING/ROLLBACKING and slot_in_use == current slot →
// the platform confirms (confirm:1), SUCCESS — or FAILURE when the platform says the new slot is
// not good. slot_in_use naming the other slot → we are on the old slot (the boot loader fell
// back, or the operation was interrupted): FAILURE (ROLLBACK_FAILURE when the other slot says
// ROLLBACKING) with a reason, recorded in the running slot's status files (confirm:2), so a
// restart reports it again.
// The running slot's status file holds the outcome of the last operation started from it
// (upstream semantics); a slot that ran otaclient (SUCCESS/INITIALIZED/FAILURE/
// ROLLBACK_FAILURE/ABORTED in its own files) and that the platform calls bootable is a valid
// rollback target. Health-gated commit (BootController::DeferConfirmation): confirm:1 waits
// for CompleteConfirmation; RejectNewSlot records FAILURE "health check failed: …" in the
// running (new) slot's files (reject:1), which the old slot's confirm:2 reports, and calls the
// platform's FallBack (reject:2). Rollback: rollback:1 active slot_in_use := other, rollback:2
// other slot ROLLBACKING + slot_in_use, rollback:3 the platform's switch (no firmware).
#pragma once

#include <array>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/fs/rooted.h"
#include "otaclient/boot/boot_controller.h"
#include "otaclient/boot/slot_layout.h"

namespace ota::boot {

struct RootfsAbOptions {
  // Root of the running slot (its status files are in <active_root>/boot/ota-status/).
  std::filesystem::path active_root = "/";
  // Block device of the running rootfs; empty: the source of `active_root` in
  // /proc/self/mountinfo.
  std::filesystem::path active_device;
  // Rootfs block device of slot 0 and slot 1 (config override): a device path or a
  // "PARTUUID=…", "UUID=…", "LABEL=…" or "PARTLABEL=…" spec (resolved with findfs); empty:
  // the platform's partitions of the running rootfs's disk.
  std::array<std::filesystem::path, 2> rootfs_devices;
  // Per-slot boot partitions that hold a copy of the slot's /boot (same forms); empty: the
  // platform's default (Jetson: the eMMC's when the rootfs is on NVMe), else none.
  std::array<std::filesystem::path, 2> boot_devices;
  // Where the standby (and a boot partition, an ESP) are mounted while written.
  std::filesystem::path mount_dir = "/run/otaclient/mnt";
  // Reboot() runs this when set (tests); otherwise the platform's reboot command.
  std::function<absl::Status()> reboot_hook;
  // Called after each numbered step of the flow above ("prepare:1" … "commit:6",
  // "rollback:N", "confirm:N"); tests kill the process here to prove crash safety.
  std::function<void(std::string_view step)> step_hook;
};

// What the slot layer found, for the platform.
struct RootfsSlots {
  int current = -1;
  std::array<BlockDevice, 2> rootfs;
  int standby() const { return 1 - current; }
};

// The outcome of confirming the first boot of a new slot.
struct SlotConfirmation {
  bool good = true;
  std::string reason;  // why not
};

// What differs between platforms.
class RootfsAbPlatform {
 public:
  virtual ~RootfsAbPlatform() = default;
  // "cboot", "jetson-uefi", "rpi_boot" (messages, logs).
  virtual std::string_view Name() const = 0;
  // The slot's name in the status files ("0", "slot_a").
  virtual std::string SlotId(int slot) const = 0;
  // Startup checks, reading the running slot's files through `active`; returns the running
  // slot (0/1). `device` is the running rootfs. Runs once per start, first.
  virtual absl::StatusOr<int> Start(const fs::RootedDir& active, const BlockDevice& device) = 0;
  // Which partition of the running rootfs's disk holds slot `slot`.
  virtual int PartitionNumber(int slot) const = 0;
  // The per-slot boot partition by default (Jetson with an NVMe rootfs: the eMMC's), if any.
  virtual std::optional<std::string> DefaultBootDevice(const BlockDevice& active, int slot) const {
    (void)active;
    (void)slot;
    return std::nullopt;
  }
  // The ext4 label a standby must carry (the Pi's slot ids are its labels); nullopt: kept.
  virtual std::optional<std::string> StandbyLabel(int slot) const {
    (void)slot;
    return std::nullopt;
  }
  // Whether a running slot without /boot/ota fails the update (Pi) or skips the copy (Jetson).
  virtual bool RequiresOtaConfig() const { return false; }
  // prepare:1 — nothing may boot the standby while it is written.
  virtual absl::Status ProtectStandby(const RootfsSlots& slots) = 0;
  // commit:2 — the standby's boot files (its image is mounted at `standby`), knowing the running
  // slot's root `active_root` (its fstab is the reference for a merge).
  virtual absl::Status WriteBootFiles(const std::filesystem::path& standby,
                                      const std::filesystem::path& active_root,
                                      const RootfsSlots& slots) = 0;
  // commit:4 — firmware from the standby's image, for slot slots.standby(). An error fails the
  // update before the switch.
  virtual absl::Status StageFirmware(const fs::RootedDir& standby, const RootfsSlots& slots) {
    (void)standby;
    (void)slots;
    return absl::OkStatus();
  }
  // commit:6 / rollback:3 — the boot chain moves to `slot` at the next boot. `update`: staged
  // firmware (if any) takes part; false for a rollback.
  virtual absl::Status Switch(const RootfsSlots& slots, int slot, bool update) = 0;
  // The update ended without a switch: forget (and clean up) staged firmware.
  virtual void DiscardFirmware(const RootfsSlots& slots) { (void)slots; }
  // confirm:1 — first start in a switched-to slot.
  virtual absl::StatusOr<SlotConfirmation> ConfirmNewSlot(const RootfsSlots& slots) = 0;
  // reject:2 — the first start of slots.current failed its health check (RejectNewSlot, before
  // ConfirmNewSlot): the next reboot (RebootCommand) must boot the other slot again. Default:
  // Switch back to it (Jetson: nvbootctrl's active boot slot).
  virtual absl::Status FallBack(const RootfsSlots& slots) {
    return Switch(slots, slots.standby(), /*update=*/false);
  }
  // Whether the boot chain would boot `slot` (rollback check).
  virtual absl::StatusOr<bool> IsSlotBootable(const RootfsSlots& slots, int slot) = 0;
  // The command that reboots into what Switch armed.
  virtual std::vector<std::string> RebootCommand() const { return {"reboot"}; }
  // The BootController hooks for an image check (Jetson UEFI's BSP guard).
  virtual bool WantsImagePlatformInfo() const { return false; }
  virtual absl::Status CheckImageCompatible(const ImagePlatformInfo& image) {
    (void)image;
    return absl::OkStatus();
  }
};

// The controller for `platform`: checks the options only; ConfirmBoot does the rest.
absl::StatusOr<std::unique_ptr<BootController>> CreateRootfsAbController(
    RootfsAbOptions options, std::unique_ptr<RootfsAbPlatform> platform);

// The directory `relative` inside `root` must be a real directory, every component of it (not a
// symlink that could point anywhere once written through by path).
absl::Status CheckRealDirs(const std::filesystem::path& root, std::string_view relative);

// `dest` becomes an exact copy of the directory `src` (old content removed first; modes, owners,
// links and times kept). The last component of `dest` is replaced, never followed.
absl::Status MirrorDirectory(const std::filesystem::path& src, const std::filesystem::path& dest);

}  // namespace ota::boot
