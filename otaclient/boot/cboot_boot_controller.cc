#include "otaclient/boot/cboot_boot_controller.h"

#include <utility>

#include "common/fs/rooted.h"
#include "common/log/log.h"
#include "common/util/errors.h"
#include "common/util/strings.h"
#include "otaclient/boot/bup_updater.h"
#include "otaclient/boot/firmware_package.h"
#include "otaclient/boot/jetson_bsp.h"
#include "otaclient/boot/nvbootctrl.h"

namespace ota::boot {
namespace {

constexpr BspVersion kFirstUefiBsp{34, 0, 0};
constexpr BspVersion kFirstUnifiedAbBsp{32, 6, 1};

class CbootPlatform : public JetsonPlatformBase {
 public:
  explicit CbootPlatform(const CbootOptions& options)
      : nv_update_engine_(options.nv_update_engine),
        work_dir_(options.mount_dir / "firmware"),
        rootfs_(options.nvbootctrl, NvbootctrlTarget::kRootfs),
        bootloader_(options.nvbootctrl, NvbootctrlTarget::kBootloader) {}

  std::string_view Name() const override { return "cboot"; }

  absl::StatusOr<int> Start(const fs::RootedDir& active, const BlockDevice& device) override {
    (void)device;
    OTA_ASSIGN_OR_RETURN(const BspVersion bsp, ReadRootfsBsp(active));
    if (bsp >= kFirstUefiBsp) {
      return absl::FailedPreconditionError(
          StrCat("cboot: this machine runs BSP ", bsp.ToString(),
                 ", which boots through UEFI: set `bootloader: jetson-uefi` in ecu_info"));
    }
    OTA_ASSIGN_OR_RETURN(NvBootControlConf conf, ReadNvBootControlConf(active));
    tnspec_ = conf.tnspec;
    unified_ = false;
    if (bsp >= kFirstUnifiedAbBsp) {
      OTA_ASSIGN_OR_RETURN(UnifiedAb unified, bootloader_.IsUnifiedEnabled());
      if (unified == UnifiedAb::kUnknown) {
        log::Warning("nvbootctrl is-unified-enabled gave an unknown answer: unified A/B off");
      }
      unified_ = unified == UnifiedAb::kEnabled;
    }
    const Nvbootctrl& nv = Target();
    OTA_ASSIGN_OR_RETURN(int count, nv.GetNumberSlots());
    if (count != 2) {
      return absl::FailedPreconditionError(
          StrCat("cboot: nvbootctrl reports ", count, " slots; A/B needs exactly 2"));
    }
    OTA_ASSIGN_OR_RETURN(const int bootloader_slot, bootloader_.GetCurrentSlot());
    int rootfs_slot = bootloader_slot;
    if (!unified_) {
      OTA_ASSIGN_OR_RETURN(rootfs_slot, rootfs_.GetCurrentSlot());
      if (rootfs_slot != bootloader_slot) {
        log::Warning("bootloader and rootfs run different slots (a failed firmware update?)",
                     {{"bootloader", StrCat(bootloader_slot)}, {"rootfs", StrCat(rootfs_slot)}});
      }
    }
    absl::StatusOr<std::string> info = nv.DumpSlotsInfo();
    log::Info("cboot", {{"bsp", bsp.ToString()},
                        {"unified_ab", unified_ ? "on" : "off"},
                        {"tnspec", tnspec_},
                        {"rootfs_slot", StrCat(rootfs_slot)},
                        {"slots_info", info.ok() ? *info : std::string(info.status().message())}});
    return rootfs_slot;
  }

  absl::Status ProtectStandby(const RootfsSlots& slots) override {
    return Target().SetSlotAsUnbootable(slots.standby());
  }

  absl::Status StageFirmware(const fs::RootedDir& standby, const RootfsSlots& slots) override {
    (void)slots;
    OTA_ASSIGN_OR_RETURN(std::optional<FirmwarePackageSet> package, LoadFirmwarePackage(standby));
    BupOptions options;
    options.nv_update_engine = nv_update_engine_;
    options.unified_ab = unified_;
    options.tnspec = tnspec_;
    options.work_dir = work_dir_;
    OTA_ASSIGN_OR_RETURN(FirmwareOutcome outcome, ApplyBupFirmware(standby, package, options));
    if (outcome == FirmwareOutcome::kApplied) log::Info("BUP firmware written to the standby");
    return absl::OkStatus();
  }

  absl::Status Switch(const RootfsSlots& slots, int slot, bool update) override {
    (void)slots;
    (void)update;
    if (!unified_) OTA_RETURN_IF_ERROR(rootfs_.SetActiveBootSlot(slot));
    return bootloader_.SetActiveBootSlot(slot);
  }

  void DiscardFirmware(const RootfsSlots& slots) override {
    // A BUP went into the standby bootloader slot, which nothing points at.
    (void)slots;
  }

  absl::StatusOr<SlotConfirmation> ConfirmNewSlot(const RootfsSlots& slots) override {
    SlotConfirmation confirmation;
    if (absl::Status verified = VerifyBootloader(nv_update_engine_); !verified.ok()) {
      confirmation.good = false;
      confirmation.reason = std::string(verified.message());
      return confirmation;
    }
    if (!unified_) {
      absl::StatusOr<bool> marked = rootfs_.IsSlotMarkedSuccessful(slots.current);
      absl::Status status = marked.status();
      if (marked.ok() && !*marked) status = rootfs_.MarkBootSuccessful();
      if (!status.ok()) {
        log::Warning("nvbootctrl mark-boot-successful failed",
                     {{"error", std::string(status.message())}});
      }
    }
    return confirmation;
  }

  absl::StatusOr<bool> IsSlotBootable(const RootfsSlots& slots, int slot) override {
    (void)slots;
    return Target().IsSlotBootable(slot);
  }

 private:
  const Nvbootctrl& Target() const { return unified_ ? bootloader_ : rootfs_; }

  std::string nv_update_engine_;
  std::filesystem::path work_dir_;
  Nvbootctrl rootfs_;
  Nvbootctrl bootloader_;
  bool unified_ = false;
  std::string tnspec_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<BootController>> CreateCbootBootController(CbootOptions options) {
  if (options.nvbootctrl.empty()) return absl::InvalidArgumentError("cboot: empty nvbootctrl");
  if (options.nv_update_engine.empty()) {
    return absl::InvalidArgumentError("cboot: empty nv_update_engine");
  }
  auto platform = std::make_unique<CbootPlatform>(options);
  RootfsAbOptions common = std::move(options);
  return CreateRootfsAbController(std::move(common), std::move(platform));
}

}  // namespace ota::boot
