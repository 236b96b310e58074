// Chooses and creates the boot backend: the --boot-backend flag wins, `auto` follows ecu_info's
// `bootloader`, and an empty `bootloader` detects by CPU (x86_64 → grub, aarch64 → cboot) like
// the Python otaclient did.
//
// Backend names: "dir" (directory slots; development/demo), "grub", "cboot" (also accepted:
// ecu_info's "jetson-cboot"). GRUB-specific otaclient flags (documented in main.cc's --help):
//   --grub-boot-dir DIR      mount point of the shared boot partition (default /boot)
//   --grub-env FILE          GRUB's environment block (default <boot dir>/grub/grubenv; must be
//                            what GRUB's load_env reads, i.e. $prefix/grubenv)
//   --grub-kernel-args ARGS  extra kernel arguments for both slots' entries (default: the running
//                            kernel's arguments minus BOOT_IMAGE/root/panic)
//   --grub-panic-seconds N   panic=N in both entries (default 5)
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "otaclient/boot/boot_controller.h"
#include "otaclient/boot/cboot_boot_controller.h"
#include "otaclient/boot/dir_boot_controller.h"
#include "otaclient/boot/grub_boot_controller.h"

namespace ota::boot {

// "dir", "grub" or "cboot" for a flag value ("auto", "dir", "grub", "cboot"), ecu_info's
// `bootloader` ("" = detect) and the CPU (uname machine). kInvalidArgument naming the source
// for anything unknown, kFailedPrecondition when detection finds no backend for the CPU.
absl::StatusOr<std::string> ResolveBootBackend(std::string_view flag,
                                               std::string_view ecu_bootloader,
                                               std::string_view machine);

// This machine's CPU as uname(2) reports it ("x86_64", "aarch64").
std::string MachineArchitecture();

struct BootFactoryOptions {
  std::string backend = "auto";  // the --boot-backend flag
  std::string ecu_bootloader;    // ecu_info `bootloader`
  std::string machine;           // "" = MachineArchitecture()
  DirBootOptions dir;            // used for "dir" (root required)
  GrubBootOptions grub;          // used for "grub"
  CbootOptions cboot;            // used for "cboot"
};

absl::StatusOr<std::unique_ptr<BootController>> CreateBootController(BootFactoryOptions options);

}  // namespace ota::boot
