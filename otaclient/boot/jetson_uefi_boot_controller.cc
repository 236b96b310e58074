#include "otaclient/boot/jetson_uefi_boot_controller.h"

#include <optional>
#include <utility>

#include "common/fs/fs.h"
#include "common/log/log.h"
#include "common/util/errors.h"
#include "common/util/strings.h"
#include "otaclient/boot/capsule_updater.h"
#include "otaclient/boot/firmware_package.h"
#include "otaclient/boot/jetson_bsp.h"
#include "otaclient/boot/nvbootctrl.h"

namespace ota::boot {
namespace {

constexpr BspVersion kFirstUefiBsp{34, 0, 0};

class UefiPlatform : public JetsonPlatformBase {
 public:
  explicit UefiPlatform(const JetsonUefiOptions& options)
      : options_(options), nvbootctrl_(options.nvbootctrl, NvbootctrlTarget::kBootloader) {}

  std::string_view Name() const override { return "jetson-uefi"; }

  absl::StatusOr<int> Start(const fs::RootedDir& active, const BlockDevice& device) override {
    (void)device;
    absl::StatusOr<std::string> compatible = fs::ReadFile(options_.device_tree_compatible);
    if (!compatible.ok() || compatible->find("tegra") == std::string::npos) {
      return absl::FailedPreconditionError(StrCat(
          "jetson-uefi: ", options_.device_tree_compatible.string(),
          compatible.ok() ? " names no tegra SoC" : StrCat(": ", compatible.status().message()),
          ": not a Jetson"));
    }
    OTA_ASSIGN_OR_RETURN(conf_, ReadNvBootControlConf(active));
    OTA_ASSIGN_OR_RETURN(DumpSlotsInfo info, SlotsInfo());
    if (!info.firmware_version.has_value()) {
      return absl::FailedPreconditionError(
          "jetson-uefi: nvbootctrl dump-slots-info reports no firmware version");
    }
    firmware_bsp_ = *info.firmware_version;
    if (firmware_bsp_.revision == 0) {
      return absl::FailedPreconditionError(
          StrCat("jetson-uefi: firmware version ", info.current_version_text,
                 " is invalid: the firmware flash is probably incomplete"));
    }
    if (firmware_bsp_ < kFirstUefiBsp) {
      return absl::FailedPreconditionError(
          StrCat("jetson-uefi: firmware BSP ", firmware_bsp_.ToString(),
                 " has no UEFI boot chain: set `bootloader: jetson-cboot` in ecu_info"));
    }
    absl::StatusOr<BspVersion> rootfs_bsp = ReadRootfsBsp(active);
    if (!rootfs_bsp.ok()) {
      log::Warning("jetson-uefi: rootfs BSP unknown",
                   {{"error", std::string(rootfs_bsp.status().message())}});
    } else if (*rootfs_bsp != firmware_bsp_) {
      log::Warning("jetson-uefi: the rootfs BSP differs from the firmware's",
                   {{"rootfs", rootfs_bsp->ToString()}, {"firmware", firmware_bsp_.ToString()}});
    }
    OTA_ASSIGN_OR_RETURN(const int current, nvbootctrl_.GetCurrentSlot());
    log::Info("jetson-uefi", {{"firmware_bsp", firmware_bsp_.ToString()},
                              {"tnspec", conf_.tnspec},
                              {"ota_boot_device", conf_.tegra_ota_boot_device},
                              {"current_slot", StrCat(current)}});
    return current;
  }

  bool WantsImagePlatformInfo() const override { return true; }

  absl::Status CheckImageCompatible(const ImagePlatformInfo& image) override {
    if (!image.jetson_bsp_version.has_value()) {
      log::Info("BSP compatibility: the image does not say its BSP, not checked");
      return absl::OkStatus();
    }
    absl::StatusOr<BspVersion> bsp = ParseBspVersion(*image.jetson_bsp_version);
    if (!bsp.ok() || *bsp != firmware_bsp_) {
      return absl::FailedPreconditionError(
          StrCat("BSP compatibility: the image is built for BSP ", *image.jetson_bsp_version,
                 ", this ECU's firmware runs ", firmware_bsp_.ToString(),
                 "; refused before the standby was touched (upgrade the BSP first)"));
    }
    log::Info("BSP compatibility: image and firmware match", {{"bsp", bsp->ToString()}});
    return absl::OkStatus();
  }

  absl::Status ProtectStandby(const RootfsSlots& slots) override {
    OTA_ASSIGN_OR_RETURN(DumpSlotsInfo info, SlotsInfo());
    if (info.active_bootloader_slot.has_value() && *info.active_bootloader_slot != slots.current) {
      log::Warning(
          "the boot chain points at the standby (an earlier switch): reset to the "
          "running slot",
          {{"active", StrCat(*info.active_bootloader_slot)}, {"running", StrCat(slots.current)}});
      OTA_RETURN_IF_ERROR(nvbootctrl_.SetActiveBootSlot(slots.current));
    }
    return absl::OkStatus();
  }

  absl::Status StageFirmware(const fs::RootedDir& standby, const RootfsSlots& slots) override {
    staged_.reset();
    OTA_ASSIGN_OR_RETURN(std::optional<FirmwarePackageSet> package, LoadFirmwarePackage(standby));
    OTA_ASSIGN_OR_RETURN(staged_, StageCapsuleUpdate(standby, package, CapsuleOptionsFor(slots)));
    return absl::OkStatus();
  }

  absl::Status Switch(const RootfsSlots& slots, int slot, bool update) override {
    std::optional<StagedCapsule> staged = std::exchange(staged_, std::nullopt);
    if (update && staged.has_value()) {
      absl::Status triggered = TriggerCapsuleUpdate(*staged, CapsuleOptionsFor(slots));
      if (triggered.ok()) {
        log::Info("capsule update armed: the firmware switches to the standby at the next boot",
                  {{"slot", StrCat(slot)},
                   {"capsules", StrCat(staged->capsules)},
                   {"bsp", staged->package_bsp.ToString()}});
        return absl::OkStatus();
      }
      log::Warning("capsule update could not be armed: switching without firmware update",
                   {{"error", std::string(triggered.message())}});
      Discard(slots);
    }
    return nvbootctrl_.SetActiveBootSlot(slot);
  }

  void DiscardFirmware(const RootfsSlots& slots) override {
    if (std::exchange(staged_, std::nullopt).has_value()) Discard(slots);
  }

  absl::StatusOr<SlotConfirmation> ConfirmNewSlot(const RootfsSlots& slots) override {
    (void)slots;
    absl::StatusOr<sys::CommandResult> verified = nvbootctrl_.Verify();
    if (!verified.ok() || verified->exit_code != 0) {
      log::Warning(
          "nvbootctrl verify failed (ignored, like upstream)",
          {{"error", verified.ok() ? StrCat("exit ", verified->exit_code, ": ", verified->err)
                                   : std::string(verified.status().message())}});
    } else {
      log::Info("nvbootctrl verify", {{"output", verified->out}});
    }
    return SlotConfirmation{};
  }

  absl::StatusOr<bool> IsSlotBootable(const RootfsSlots& slots, int slot) override {
    (void)slots;
    OTA_ASSIGN_OR_RETURN(DumpSlotsInfo info, SlotsInfo());
    return info.slot_status[slot] != "unbootable";
  }

 private:
  absl::StatusOr<DumpSlotsInfo> SlotsInfo() const {
    OTA_ASSIGN_OR_RETURN(std::string text, nvbootctrl_.DumpSlotsInfo());
    return ParseDumpSlotsInfo(text);
  }

  CapsuleOptions CapsuleOptionsFor(const RootfsSlots& slots) const {
    CapsuleOptions capsule;
    capsule.firmware_bsp = firmware_bsp_;
    capsule.conf = conf_;
    capsule.boot_disk = slots.rootfs[slots.current].disk;
    capsule.internal_emmc_disk = options_.internal_emmc_disk;
    capsule.esp_mount_dir = options_.mount_dir / "esp";
    capsule.efivars_dir = options_.efivars_dir;
    capsule.esp_fs_type = options_.esp_fs_type;
    return capsule;
  }

  void Discard(const RootfsSlots& slots) const {
    if (absl::Status cleared = ClearStagedCapsules(CapsuleOptionsFor(slots)); !cleared.ok()) {
      log::Warning("could not remove the staged capsules",
                   {{"error", std::string(cleared.message())}});
    }
  }

  JetsonUefiOptions options_;
  Nvbootctrl nvbootctrl_;
  NvBootControlConf conf_;
  BspVersion firmware_bsp_;
  std::optional<StagedCapsule> staged_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<BootController>> CreateJetsonUefiBootController(
    JetsonUefiOptions options) {
  if (options.nvbootctrl.empty()) {
    return absl::InvalidArgumentError("jetson-uefi: empty nvbootctrl");
  }
  auto platform = std::make_unique<UefiPlatform>(options);
  RootfsAbOptions common = std::move(options);
  return CreateRootfsAbController(std::move(common), std::move(platform));
}

}  // namespace ota::boot
