// Chooses and creates the boot backend: the --boot-backend flag wins, `auto` follows ecu_info's
// `bootloader`, and an empty (or `auto_detect`) `bootloader` detects like the Python otaclient:
// x86_64 → grub; aarch64 with /sys/module/tegra_fuse/parameters/tegra_chip_id → cboot; aarch64
// whose /proc/device-tree/model names a "Raspberry Pi 4 Model B" → rpi_boot (other Pi models
// are not detected, like upstream); anything else is an error asking for `bootloader`.
// `jetson-uefi` is never guessed (upstream does not either: an Orin without `bootloader` gets
// cboot, whose startup refuses a BSP >= R34 and names jetson-uefi).
//
// Backend names: "dir" (directory slots; development/demo), "grub", "cboot" (also accepted:
// ecu_info's "jetson-cboot"), "jetson-uefi", "rpi_boot". GRUB-specific otaclient flags (documented
// in main.cc's
// --help):
//   --grub-boot-dir DIR      mount point of the shared boot partition (default /boot)
//   --grub-env FILE          GRUB's environment block (default <boot dir>/grub/grubenv; must be
//                            what GRUB's load_env reads, i.e. $prefix/grubenv)
//   --grub-kernel-args ARGS  extra kernel arguments for both slots' entries (default: the running
//                            kernel's arguments minus BOOT_IMAGE/root/panic)
//   --grub-panic-seconds N   panic=N in both entries (default 5)
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "otaclient/boot/boot_controller.h"
#include "otaclient/boot/cboot_boot_controller.h"
#include "otaclient/boot/dir_boot_controller.h"
#include "otaclient/boot/grub_boot_controller.h"
#include "otaclient/boot/jetson_uefi_boot_controller.h"
#include "otaclient/boot/rpi_boot_controller.h"

namespace ota::boot {

inline constexpr std::string_view kRaspberryPi4Model = "Raspberry Pi 4 Model B";

// What auto-detection looks at.
struct PlatformProbe {
  std::string machine;            // uname machine: "x86_64", "aarch64"
  bool tegra_chip_id = false;     // the tegra_fuse module's chip id file exists (a Jetson)
  std::string device_tree_model;  // /proc/device-tree/model without its NUL ("" unreadable)
};
struct PlatformProbePaths {
  std::filesystem::path tegra_chip_id = "/sys/module/tegra_fuse/parameters/tegra_chip_id";
  std::filesystem::path device_tree_model = "/proc/device-tree/model";
};
PlatformProbe ProbePlatform(const PlatformProbePaths& paths = {});

// "dir", "grub", "cboot", "jetson-uefi" or "rpi_boot" for a flag value ("auto" or a backend name),
// ecu_info's `bootloader` ("" or "auto_detect" = detect) and the probe. kInvalidArgument naming the
// source for anything unknown, kFailedPrecondition when detection finds no backend.
absl::StatusOr<std::string> ResolveBootBackend(std::string_view flag,
                                               std::string_view ecu_bootloader,
                                               const PlatformProbe& probe);

// This machine's CPU as uname(2) reports it ("x86_64", "aarch64").
std::string MachineArchitecture();

struct BootFactoryOptions {
  std::string backend = "auto";        // the --boot-backend flag
  std::string ecu_bootloader;          // ecu_info `bootloader`
  std::optional<PlatformProbe> probe;  // nullopt: ProbePlatform(probe_paths)
  PlatformProbePaths probe_paths;
  DirBootOptions dir;      // used for "dir" (root required)
  GrubBootOptions grub;    // used for "grub"
  CbootOptions cboot;      // used for "cboot"
  JetsonUefiOptions uefi;  // used for "jetson-uefi"
  RpiBootOptions rpi;      // used for "rpi_boot"
};

absl::StatusOr<std::unique_ptr<BootController>> CreateBootController(BootFactoryOptions options);

}  // namespace ota::boot
