#include "otaclient/boot/bup_updater.h"

#include <system_error>

#include "common/log/log.h"
#include "common/sys/command.h"
#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::boot {
namespace {

constexpr BspVersion kFirstUefiBsp{34, 0, 0};

std::string Tail(const std::string& text) {
  constexpr size_t kMax = 400;
  return text.size() <= kMax ? text : "..." + text.substr(text.size() - kMax);
}

}  // namespace

absl::StatusOr<FirmwareOutcome> ApplyBupFirmware(const fs::RootedDir& standby,
                                                 const std::optional<FirmwarePackageSet>& package,
                                                 const BupOptions& options) {
  if (options.tnspec.empty()) {
    log::Warning("no TNSPEC in nv_boot_control.conf: firmware update skipped");
    return FirmwareOutcome::kNone;
  }
  if (!package.has_value()) return FirmwareOutcome::kNone;
  const FirmwareManifest& manifest = package->manifest;
  if (manifest.bsp_version >= kFirstUefiBsp) {
    return absl::FailedPreconditionError(
        StrCat("the image's firmware package is for BSP ", manifest.bsp_version.ToString(),
               " (UEFI); this CBoot machine takes BUP firmware below R34"));
  }
  if (!FirmwareCompatible(manifest.compat, options.tnspec)) {
    return absl::FailedPreconditionError(StrCat(
        "the image's firmware package (", manifest.hardware_series, " ", manifest.hardware_model,
        ", board ", manifest.compat.board_id, "-", manifest.compat.board_sku, "-",
        manifest.compat.board_rev, "-", manifest.compat.board_conf,
        ") is not for this board (TNSPEC ", options.tnspec, ")"));
  }
  std::error_code ec;
  std::filesystem::create_directories(options.work_dir, ec);
  if (ec) return ErrnoStatus(ec.value(), StrCat("create ", options.work_dir.string()));
  int applied = 0;
  for (const FirmwarePackage* payload : package->Requested(PayloadType::kBup)) {
    OTA_RETURN_IF_ERROR(PayloadPathInImage(*payload).status());
    const std::filesystem::path copy = options.work_dir / StrCat("bup-", applied);
    absl::Status verified = CopyVerifiedPayload(standby, *payload, copy);
    if (absl::IsNotFound(verified) || absl::IsDataLoss(verified)) {
      log::Warning("BUP payload skipped", {{"payload", payload->payload_name},
                                           {"reason", std::string(verified.message())}});
      continue;
    }
    OTA_RETURN_IF_ERROR(verified);
    std::vector<std::string> argv = {options.nv_update_engine, "-i",
                                     options.unified_ab ? "bl-only" : "bl", "--payload",
                                     copy.string()};
    if (!options.unified_ab) argv.emplace_back("--no-reboot");
    log::Info("applying BUP to the standby bootloader slot",
              {{"payload", payload->payload_name}, {"command", sys::DescribeArgv(argv)}});
    OTA_ASSIGN_OR_RETURN(sys::CommandResult result, sys::RunProgram(argv, kNvUpdateEngineTimeout));
    std::filesystem::remove(copy, ec);
    if (result.exit_code != 0) {
      return absl::InternalError(StrCat("`", sys::DescribeArgv(argv), "` exited ", result.exit_code,
                                        ": ", Tail(result.err.empty() ? result.out : result.err)));
    }
    log::Info("BUP applied", {{"payload", payload->payload_name}, {"output", Tail(result.out)}});
    ++applied;
  }
  if (applied == 0) {
    return absl::FailedPreconditionError(
        StrCat("the image requests a firmware update but none of its BUP payloads could be "
               "applied (missing, not a BUP or digest mismatch; requested: ",
               package->request.firmware_list.size(), ")"));
  }
  return FirmwareOutcome::kApplied;
}

absl::Status VerifyBootloader(const std::string& nv_update_engine) {
  const std::vector<std::string> argv = {nv_update_engine, "--verify"};
  OTA_ASSIGN_OR_RETURN(sys::CommandResult result, sys::RunProgram(argv, kNvUpdateEngineTimeout));
  log::Info("bootloader verified", {{"command", sys::DescribeArgv(argv)},
                                    {"exit", StrCat(result.exit_code)},
                                    {"output", Tail(result.out)}});
  if (result.exit_code != 0) {
    return absl::FailedPreconditionError(
        StrCat("`", sys::DescribeArgv(argv), "` exited ", result.exit_code,
               ": the new bootloader slot did not come up (",
               Tail(result.err.empty() ? result.out : result.err), ")"));
  }
  return absl::OkStatus();
}

}  // namespace ota::boot
