#include "otaclient/boot/boot_factory.h"

#include <sys/utsname.h>

#include <system_error>

#include "common/fs/fs.h"
#include "common/log/log.h"
#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::boot {

std::string MachineArchitecture() {
  struct utsname name;
  if (::uname(&name) != 0) return {};
  return name.machine;
}

PlatformProbe ProbePlatform(const PlatformProbePaths& paths) {
  PlatformProbe probe;
  probe.machine = MachineArchitecture();
  std::error_code ec;
  probe.tegra_chip_id = std::filesystem::exists(paths.tegra_chip_id, ec);
  if (absl::StatusOr<std::string> model = fs::ReadFile(paths.device_tree_model); model.ok()) {
    // The device tree's strings end in NUL.
    probe.device_tree_model = std::string(model->c_str());
  }
  return probe;
}

absl::StatusOr<std::string> ResolveBootBackend(std::string_view flag,
                                               std::string_view ecu_bootloader,
                                               const PlatformProbe& probe) {
  auto canonical = [](std::string_view name) -> std::string {
    if (name == "dir" || name == "grub" || name == "cboot" || name == "jetson-uefi" ||
        name == "rpi_boot") {
      return std::string(name);
    }
    if (name == "jetson-cboot") return "cboot";
    return {};
  };
  if (flag != "auto") {
    std::string backend = canonical(flag);
    if (backend.empty()) {
      return absl::InvalidArgumentError(StrCat(
          "--boot-backend ", flag, ": expected auto, dir, grub, cboot, jetson-uefi or rpi_boot"));
    }
    return backend;
  }
  // ecu_info's explicit `auto_detect` means the same as no `bootloader` (upstream's default).
  if (!ecu_bootloader.empty() && ecu_bootloader != "auto_detect") {
    std::string backend = canonical(ecu_bootloader);
    if (backend.empty()) {
      return absl::InvalidArgumentError(
          StrCat("ecu_info bootloader '", ecu_bootloader,
                 "' is not supported here (expected grub, cboot, jetson-cboot, jetson-uefi, "
                 "rpi_boot, auto_detect or dir)"));
    }
    return backend;
  }
  // Detection as the Python client does it: jetson-uefi is never guessed (an Orin without
  // `bootloader` lands on cboot, whose startup refuses a BSP >= R34 and says so).
  if (probe.machine == "x86_64") return std::string("grub");
  if (probe.machine == "aarch64") {
    if (probe.tegra_chip_id) return std::string("cboot");
    if (probe.device_tree_model.find(kRaspberryPi4Model) != std::string::npos) {
      return std::string("rpi_boot");
    }
    return absl::FailedPreconditionError(
        StrCat("aarch64 machine is neither a Jetson (no tegra_chip_id) nor a ", kRaspberryPi4Model,
               " (device tree model '", probe.device_tree_model,
               "'): set `bootloader` in ecu_info or pass --boot-backend"));
  }
  return absl::FailedPreconditionError(
      StrCat("no boot backend for CPU '", probe.machine,
             "': set `bootloader` in ecu_info or pass --boot-backend"));
}

absl::StatusOr<std::unique_ptr<BootController>> CreateBootController(BootFactoryOptions options) {
  const PlatformProbe probe = options.probe ? *options.probe : ProbePlatform(options.probe_paths);
  OTA_ASSIGN_OR_RETURN(std::string backend,
                       ResolveBootBackend(options.backend, options.ecu_bootloader, probe));
  log::Info("boot backend", {{"backend", backend},
                             {"flag", options.backend},
                             {"ecu_info_bootloader", options.ecu_bootloader}});
  if (backend == "dir") {
    if (options.dir.root.empty()) {
      return absl::InvalidArgumentError("the dir boot backend needs --dir-slots-root DIR");
    }
    OTA_ASSIGN_OR_RETURN(std::unique_ptr<DirBootController> controller,
                         DirBootController::Create(std::move(options.dir)));
    return std::unique_ptr<BootController>(std::move(controller));
  }
  if (backend == "grub") {
    OTA_ASSIGN_OR_RETURN(std::unique_ptr<GrubBootController> controller,
                         GrubBootController::Create(std::move(options.grub)));
    return std::unique_ptr<BootController>(std::move(controller));
  }
  if (backend == "jetson-uefi") return CreateJetsonUefiBootController(std::move(options.uefi));
  if (backend == "rpi_boot") return CreateRpiBootController(std::move(options.rpi));
  return CreateCbootBootController(std::move(options.cboot));
}

}  // namespace ota::boot
