#include "otaclient/boot/boot_factory.h"

#include <sys/utsname.h>

#include "common/log/log.h"
#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::boot {

std::string MachineArchitecture() {
  struct utsname name;
  if (::uname(&name) != 0) return {};
  return name.machine;
}

absl::StatusOr<std::string> ResolveBootBackend(std::string_view flag,
                                               std::string_view ecu_bootloader,
                                               std::string_view machine) {
  auto canonical = [](std::string_view name) -> std::string {
    if (name == "dir" || name == "grub" || name == "cboot") return std::string(name);
    if (name == "jetson-cboot") return "cboot";
    return {};
  };
  if (flag != "auto") {
    std::string backend = canonical(flag);
    if (backend.empty()) {
      return absl::InvalidArgumentError(
          StrCat("--boot-backend ", flag, ": expected auto, dir, grub or cboot"));
    }
    return backend;
  }
  if (!ecu_bootloader.empty()) {
    std::string backend = canonical(ecu_bootloader);
    if (backend.empty()) {
      return absl::InvalidArgumentError(
          StrCat("ecu_info bootloader '", ecu_bootloader,
                 "' is not supported here (expected grub, cboot, jetson-cboot or dir)"));
    }
    return backend;
  }
  if (machine == "x86_64") return std::string("grub");
  if (machine == "aarch64") return std::string("cboot");
  return absl::FailedPreconditionError(
      StrCat("no boot backend for CPU '", machine,
             "': set `bootloader` in ecu_info or pass --boot-backend"));
}

absl::StatusOr<std::unique_ptr<BootController>> CreateBootController(BootFactoryOptions options) {
  const std::string machine = options.machine.empty() ? MachineArchitecture() : options.machine;
  OTA_ASSIGN_OR_RETURN(std::string backend,
                       ResolveBootBackend(options.backend, options.ecu_bootloader, machine));
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
  return CreateCbootBootController(std::move(options.cboot));
}

}  // namespace ota::boot
