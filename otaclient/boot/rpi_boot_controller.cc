#include "otaclient/boot/rpi_boot_controller.h"

#include <sys/mount.h>

#include <chrono>
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
#include "otaclient/boot/rpi_boot_files.h"

namespace ota::boot {
namespace {

namespace stdfs = std::filesystem;

constexpr std::string_view kConfigTxt = "config.txt";
constexpr std::string_view kTrybootTxt = "tryboot.txt";
// Written after a switch for older Python clients, which look for it.
constexpr std::string_view kSwitchFinalizedFlag = "._ota_switch_boot_finalized";
constexpr std::string_view kFlashKernel = "/usr/sbin/flash-kernel";
// flash-kernel's (and chroot's lookup's) only other environment variable.
constexpr std::string_view kChrootPath = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
constexpr std::chrono::milliseconds kFlashKernelTimeout = std::chrono::minutes(10);

std::string SlotName(int slot) { return slot == 0 ? "slot_a" : "slot_b"; }

class RpiPlatform : public RootfsAbPlatform {
 public:
  explicit RpiPlatform(const RpiBootOptions& options) : options_(options) {}

  std::string_view Name() const override { return "rpi_boot"; }
  std::string SlotId(int slot) const override { return SlotName(slot); }
  int PartitionNumber(int slot) const override { return slot + 2; }
  std::optional<std::string> StandbyLabel(int slot) const override { return SlotName(slot); }
  bool RequiresOtaConfig() const override { return true; }

  absl::StatusOr<int> Start(const fs::RootedDir& active, const BlockDevice& device) override {
    (void)active;
    absl::StatusOr<std::string> model = fs::ReadFile(options_.device_tree_model);
    if (!model.ok() || model->find("Raspberry Pi") == std::string::npos) {
      return absl::FailedPreconditionError(
          StrCat("rpi_boot: ", options_.device_tree_model.string(),
                 model.ok() ? StrCat(" says '", std::string(model->c_str()), "'")
                            : StrCat(": ", model.status().message()),
                 ": not a Raspberry Pi"));
    }
    if (device.partition_number != 2 && device.partition_number != 3) {
      return absl::FailedPreconditionError(
          StrCat("rpi_boot: the running rootfs ", device.node.string(), " is partition ",
                 device.partition_number, "; slot_a must be partition 2 and slot_b partition 3"));
    }
    const int current = device.partition_number - 2;
    if (!options_.system_boot_device.empty()) {
      OTA_ASSIGN_OR_RETURN(system_boot_,
                           DescribeDeviceNode(SystemPaths{}, options_.system_boot_device));
    } else {
      OTA_ASSIGN_OR_RETURN(system_boot_, DescribePartitionOf(SystemPaths{}, device.disk, 1,
                                                             "rpi_boot: system-boot"));
    }
    OTA_ASSIGN_OR_RETURN(MountedFileSystem mounted, MountSystemBoot());
    for (int slot : {0, 1}) {
      for (std::string_view file : {"config.txt_", "cmdline.txt_"}) {
        const stdfs::path path = mounted.target() / StrCat(file, SlotName(slot));
        std::error_code ec;
        if (!stdfs::is_regular_file(path, ec)) {
          return absl::FailedPreconditionError(StrCat("rpi_boot: ", path.filename().string(),
                                                      " is missing on system-boot (",
                                                      system_boot_.node.string(), ")"));
        }
      }
    }
    OTA_RETURN_IF_ERROR(mounted.SyncAndUnmount());
    log::Info("rpi_boot", {{"model", std::string(model->c_str())},
                           {"system_boot", system_boot_.node.string()},
                           {"current_slot", SlotName(current)}});
    return current;
  }

  absl::Status ProtectStandby(const RootfsSlots& slots) override {
    OTA_ASSIGN_OR_RETURN(MountedFileSystem mounted, MountSystemBoot());
    OTA_RETURN_IF_ERROR(CopyBootFile(mounted.target(), ConfigOf(slots.current), kTrybootTxt));
    return mounted.SyncAndUnmount();
  }

  absl::Status WriteBootFiles(const stdfs::path& standby, const stdfs::path& active_root,
                              const RootfsSlots& slots) override {
    OTA_RETURN_IF_ERROR(WriteFstab(standby, active_root, slots));
    return InstallKernel(standby, slots.standby());
  }

  absl::Status Switch(const RootfsSlots& slots, int slot, bool update) override {
    (void)update;
    OTA_ASSIGN_OR_RETURN(MountedFileSystem mounted, MountSystemBoot());
    const stdfs::path boot = mounted.target();
    OTA_RETURN_IF_ERROR(CheckSlot(boot, slots, slot));
    OTA_RETURN_IF_ERROR(CopyBootFile(boot, ConfigOf(slot), kTrybootTxt));
    OTA_RETURN_IF_ERROR(fs::WriteFileAtomic(boot / kSwitchFinalizedFlag, ""));
    return mounted.SyncAndUnmount();
  }

  void DiscardFirmware(const RootfsSlots& slots) override {
    // tryboot.txt may name the standby only after a switch; make sure it does not.
    absl::Status reset = ProtectStandby(slots);
    if (!reset.ok()) {
      log::Warning("could not point tryboot.txt back at the running slot",
                   {{"error", std::string(reset.message())}});
    }
  }

  // config.txt still boots the old slot (ConfirmNewSlot never ran): tryboot.txt follows it, so
  // RebootCommand makes a plain reboot into the old slot.
  absl::Status FallBack(const RootfsSlots& slots) override {
    OTA_ASSIGN_OR_RETURN(MountedFileSystem mounted, MountSystemBoot());
    OTA_RETURN_IF_ERROR(CopyBootFile(mounted.target(), ConfigOf(slots.standby()), kTrybootTxt));
    return mounted.SyncAndUnmount();
  }

  absl::StatusOr<SlotConfirmation> ConfirmNewSlot(const RootfsSlots& slots) override {
    absl::StatusOr<MountedFileSystem> mounted = MountSystemBoot();
    if (!mounted.ok()) return SlotConfirmation{false, std::string(mounted.status().message())};
    const stdfs::path boot = mounted->target();
    absl::Status made_default = CopyBootFile(boot, ConfigOf(slots.current), kConfigTxt);
    made_default.Update(CopyBootFile(boot, ConfigOf(slots.current), kTrybootTxt));
    if (!made_default.ok()) {
      return SlotConfirmation{false, StrCat("making ", SlotName(slots.current),
                                            " the default boot: ", made_default.message())};
    }
    RemoveBackups(boot);
    OTA_RETURN_IF_ERROR(mounted->SyncAndUnmount());
    log::Info("config.txt now boots the new slot", {{"slot", SlotName(slots.current)}});
    return SlotConfirmation{};
  }

  absl::StatusOr<bool> IsSlotBootable(const RootfsSlots& slots, int slot) override {
    OTA_ASSIGN_OR_RETURN(MountedFileSystem mounted, MountSystemBoot());
    absl::Status checked = CheckSlot(mounted.target(), slots, slot);
    OTA_RETURN_IF_ERROR(mounted.SyncAndUnmount());
    if (!checked.ok()) {
      log::Warning("slot not bootable", {{"error", std::string(checked.message())}});
    }
    return checked.ok();
  }

  // A tryboot when tryboot.txt differs from config.txt (a switch is armed, also one made by an
  // earlier process), else a plain reboot.
  std::vector<std::string> RebootCommand() const override {
    absl::StatusOr<MountedFileSystem> mounted = MountSystemBoot();
    if (!mounted.ok()) return {"reboot"};
    absl::StatusOr<std::string> tryboot = fs::ReadFile(mounted->target() / kTrybootTxt);
    absl::StatusOr<std::string> config = fs::ReadFile(mounted->target() / kConfigTxt);
    (void)mounted->SyncAndUnmount();
    if (tryboot.ok() && config.ok() && *tryboot != *config) return {"reboot", "0 tryboot"};
    return {"reboot"};
  }

 private:
  static std::string ConfigOf(int slot) { return StrCat("config.txt_", SlotName(slot)); }

  absl::StatusOr<MountedFileSystem> MountSystemBoot() const {
    return MountedFileSystem::Mount(system_boot_.node, options_.mount_dir / "system-boot",
                                    FatMountSpec(options_.system_boot_fs_type));
  }

  // `to` := `from` on system-boot, atomically and durably.
  static absl::Status CopyBootFile(const stdfs::path& boot, std::string_view from,
                                   std::string_view to) {
    OTA_ASSIGN_OR_RETURN(fs::RootedDir dir, fs::RootedDir::Open(boot));
    OTA_ASSIGN_OR_RETURN(std::string text, dir.ReadFile(from));
    return dir.RewriteFileDurably(to, text);
  }

  static absl::Status CheckSlot(const stdfs::path& boot, const RootfsSlots& slots, int slot) {
    OTA_ASSIGN_OR_RETURN(fs::RootedDir dir, fs::RootedDir::Open(boot));
    const BlockDevice& device = slots.rootfs[slot];
    RpiSlotIdentity identity{SlotName(slot), device.partuuid, device.fs_uuid, device.node.string()};
    return CheckSlotBootConfig([&dir](std::string_view name) { return dir.ReadFile(name); },
                               identity);
  }

  static void RemoveBackups(const stdfs::path& boot) {
    std::error_code ec;
    std::vector<stdfs::path> backups;
    for (auto it = stdfs::recursive_directory_iterator(boot, ec);
         !ec && it != stdfs::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_regular_file(ec) && it->path().extension() == ".bak") {
        backups.push_back(it->path());
      }
    }
    for (const stdfs::path& backup : backups) stdfs::remove(backup, ec);
  }

  static absl::Status WriteFstab(const stdfs::path& standby, const stdfs::path& active_root,
                                 const RootfsSlots& slots) {
    OTA_RETURN_IF_ERROR(CheckRealDirs(standby, "etc"));
    OTA_ASSIGN_OR_RETURN(fs::RootedDir dir, fs::RootedDir::Open(standby));
    const std::string standby_spec = StrCat("LABEL=", SlotName(slots.standby()));
    absl::StatusOr<std::string> image_fstab = dir.ReadFile("etc/fstab");
    if (absl::IsNotFound(image_fstab.status())) {
      // What the Python client writes.
      return dir.RewriteFileDurably(
          "etc/fstab", StrCat(standby_spec, "\t/\text4\tdiscard,x-systemd.growfs\t0\t1\n",
                              "LABEL=system-boot\t/boot/firmware\tvfat\tdefaults\t0\t1\n"));
    }
    if (!image_fstab.ok()) return image_fstab.status();
    absl::StatusOr<std::string> active_fstab = fs::ReadFile(active_root / "etc/fstab");
    if (!active_fstab.ok() && !absl::IsNotFound(active_fstab.status())) {
      return active_fstab.status();
    }
    const std::string active_text = active_fstab.ok() ? *active_fstab : std::string();
    FstabMergeInput input;
    input.active_fstab = active_text;
    input.image_fstab = *image_fstab;
    input.active_root_spec = StrCat("LABEL=", SlotName(slots.current));
    input.standby_root_spec = standby_spec;
    input.shared_boot = false;  // /boot/firmware is the image's own line (or the active one's)
    OTA_ASSIGN_OR_RETURN(std::string merged, MergeFstab(input));
    return dir.RewriteFileDurably("etc/fstab", merged);
  }

  absl::Status InstallKernel(const stdfs::path& standby, int slot) const {
    OTA_ASSIGN_OR_RETURN(fs::RootedDir image, fs::RootedDir::Open(standby));
    absl::StatusOr<struct stat> tool = image.Lstat(kFlashKernel.substr(1));
    if (!tool.ok()) {
      return WithContext(tool.status(), StrCat("rpi_boot: the new image has no ", kFlashKernel,
                                               " to install its kernel with"));
    }
    // OTA images leave /tmp out (the generator's ignore list), and may lack the others: made
    // inside the image (never through a symlink leading out of it); the bind targets must then
    // be real directories.
    OTA_RETURN_IF_ERROR(image.MakeDirs("tmp", 01777));
    for (std::string_view dir : {"boot/firmware", "proc", "sys"}) {
      OTA_RETURN_IF_ERROR(image.MakeDirs(dir));
      absl::Status real = CheckRealDirs(standby, dir);
      if (!real.ok()) {
        return WithContext(real,
                           StrCat("rpi_boot: flash-kernel needs /", dir, " in the new image"));
      }
    }
    OTA_ASSIGN_OR_RETURN(MountedFileSystem boot, MountSystemBoot());
    std::optional<absl::Status> ran;
    {
      MountSpec bind;
      bind.fs_type = "";
      bind.flags = MS_BIND;
      // Unmounted (in reverse order) when they go out of scope, also on errors.
      std::vector<MountedFileSystem> binds;
      for (const auto& [src, dst] :
           {std::pair<stdfs::path, std::string>{boot.target(), "boot/firmware"},
            {options_.proc, "proc"},
            {options_.sys, "sys"}}) {
        OTA_ASSIGN_OR_RETURN(MountedFileSystem mounted,
                             MountedFileSystem::Mount(src, standby / dst, bind));
        binds.push_back(std::move(mounted));
      }
      absl::StatusOr<std::string> out =
          sys::RunProgramChecked({"env", "-i", "FK_FORCE=yes", std::string(kChrootPath), "chroot",
                                  standby.string(), std::string(kFlashKernel)},
                                 kFlashKernelTimeout);
      ran = out.ok() ? absl::OkStatus()
                     : WithContext(out.status(), "rpi_boot: flash-kernel in the new image");
      while (!binds.empty()) {
        absl::Status unmounted = binds.back().SyncAndUnmount();
        if (!unmounted.ok() && ran->ok()) ran = unmounted;
        binds.pop_back();
      }
    }
    OTA_RETURN_IF_ERROR(*ran);
    {
      OTA_ASSIGN_OR_RETURN(fs::RootedDir dir, fs::RootedDir::Open(boot.target()));
      for (std::string_view file : {"vmlinuz", "initrd.img"}) {
        OTA_ASSIGN_OR_RETURN(bool exists, dir.Exists(file));
        if (!exists) {
          if (file == "vmlinuz") {
            return absl::FailedPreconditionError(
                StrCat("rpi_boot: flash-kernel of the new image wrote no vmlinuz on system-boot"));
          }
          continue;
        }
        OTA_RETURN_IF_ERROR(dir.Rename(file, StrCat(file, "_", SlotName(slot))));
      }
      OTA_RETURN_IF_ERROR(dir.SyncFs());
    }  // closes system-boot before it is unmounted
    OTA_RETURN_IF_ERROR(boot.SyncAndUnmount());
    log::Info("kernel of the new image installed on system-boot", {{"slot", SlotName(slot)}});
    return absl::OkStatus();
  }

  RpiBootOptions options_;
  BlockDevice system_boot_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<BootController>> CreateRpiBootController(RpiBootOptions options) {
  auto platform = std::make_unique<RpiPlatform>(options);
  RootfsAbOptions common = std::move(options);
  return CreateRootfsAbController(std::move(common), std::move(platform));
}

}  // namespace ota::boot
