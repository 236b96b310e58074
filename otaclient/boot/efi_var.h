// UEFI variables as Linux and NVIDIA's firmware keep them in files, and the one variable
// otaclient writes: OsIndications with the "file capsule delivery" bit, which tells the UEFI
// firmware to process the capsules staged in \EFI\UpdateCapsule\ on the ESP at the next boot.
//
// File format (efivarfs(5); NVIDIA's ESP variable files use the same): a 4-byte little-endian
// attribute word, then the data. OsIndications' data is a 64-bit little-endian bit mask, so the
// trigger is 12 bytes: 07 00 00 00 (NON_VOLATILE | BOOTSERVICE_ACCESS | RUNTIME_ACCESS) and
// 04 00 00 00 00 00 00 00 (EFI_OS_INDICATIONS_FILE_CAPSULE_DELIVERY_SUPPORTED).
//
// Where the variable goes depends on where the firmware keeps its variables
// (TEGRA_OTA_BOOT_DEVICE, jetson_bsp.h):
//   QSPI  efivarfs: <efivars dir>/OsIndications-8be4df61-93ca-11d2-aa0d-00e098032b8c
//   eMMC  a file on the eMMC's ESP: EFI/NVDA/Variables/OsIndications-8be4df61-…
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/fs/rooted.h"

namespace ota::boot {

inline constexpr std::string_view kOsIndicationsVariable =
    "OsIndications-8be4df61-93ca-11d2-aa0d-00e098032b8c";
inline constexpr std::string_view kEspVariablesDir = "EFI/NVDA/Variables";
inline constexpr std::string_view kDefaultEfivarsDir = "/sys/firmware/efi/efivars";

inline constexpr uint32_t kEfiVariableNonVolatile = 0x1;
inline constexpr uint32_t kEfiVariableBootserviceAccess = 0x2;
inline constexpr uint32_t kEfiVariableRuntimeAccess = 0x4;
inline constexpr uint64_t kOsIndicationsFileCapsuleDelivery = 0x4;

struct EfiVariable {
  uint32_t attributes = 0;
  std::string data;
  bool operator==(const EfiVariable&) const = default;
};

std::string EncodeEfiVariable(const EfiVariable& variable);
// kInvalidArgument for fewer than 4 bytes or more than 64 KiB.
absl::StatusOr<EfiVariable> ParseEfiVariable(std::string_view bytes);

// The OsIndications variable asking for file capsule delivery (the 12 bytes above).
EfiVariable CapsuleTriggerVariable();
// OsIndications' bit mask; kInvalidArgument when the data is not exactly 8 bytes.
absl::StatusOr<uint64_t> OsIndicationsValue(const EfiVariable& variable);

// Writes a variable into efivarfs mounted at (or a stand-in directory at) `efivars_dir`:
//   - efivarfs mounted there read-only → remounted read-write for the write and read-only again
//     afterwards (upstream leaves it writable);
//   - nothing mounted there and `efivars_dir` is the real /sys/firmware/efi/efivars → efivarfs
//     is mounted for the write and unmounted afterwards;
//   - anything else (tests): the directory is written as it is.
// An existing variable file usually carries the immutable attribute (the kernel sets it on most
// variables): it is cleared first (upstream does not, and its write then fails). The payload is
// written with one write(2), as efivarfs requires.
absl::Status WriteEfivarfsVariable(const std::filesystem::path& efivars_dir, std::string_view name,
                                   const EfiVariable& variable,
                                   const std::filesystem::path& mountinfo = "/proc/self/mountinfo");

// Writes a variable as a file under EFI/NVDA/Variables/ of a mounted ESP, durably and atomically.
absl::Status WriteEspVariable(fs::RootedDir& esp, std::string_view name,
                              const EfiVariable& variable);

}  // namespace ota::boot
