// Wrapper around NVIDIA's `nvbootctrl` (Jetson A/B slots). Every call runs the CLI; its output
// is parsed strictly (a slot is exactly "0" or "1" plus one optional newline — anything else is
// an error naming the command and what it printed).
//
// Target: `-t rootfs` (CBoot with rootfs-only A/B, i.e. unified A/B disabled) or none, the
// bootloader chain (CBoot with unified A/B, where it moves the rootfs too, and always on UEFI,
// which never takes -t).
//
//   get-current-slot                → the slot the machine booted
//   get-number-slots                → must be 2
//   set-active-boot-slot N          → boot N from now on (CBoot resets its retry count; a slot
//                                     never marked successful falls back after the retries)
//   set-slot-as-unbootable N        → CBoot will not boot N
//   mark-boot-successful            → the current slot booted fine (takes no slot argument;
//                                     the Python client passes one, which nvbootctrl ignores)
//   is-slot-bootable N / is-slot-marked-successful N → exit 0 yes, exit 1..125 no
//   dump-slots-info                 → free text (jetson_bsp.h parses the UEFI one)
//   verify                          → UEFI: the boot of the current slot is good (its output and
//                                     exit code are only logged, like upstream)
//   is-unified-enabled              → CBoot: exit 0 unified A/B on, 70 rootfs-only A/B,
//                                     69 A/B off
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/sys/command.h"

namespace ota::boot {

// nvbootctrl answers in milliseconds; a hung one must not hang the update or the start.
inline constexpr std::chrono::milliseconds kNvbootctrlTimeout = std::chrono::seconds(20);

// Parses the output of `get-current-slot`: "0" or "1", optionally followed by exactly one "\n".
absl::StatusOr<int> ParseNvbootctrlSlot(std::string_view output);
// Parses the output of `get-number-slots`: a decimal count 1..9 plus an optional "\n".
absl::StatusOr<int> ParseNvbootctrlSlotCount(std::string_view output);

enum class NvbootctrlTarget { kRootfs, kBootloader };

// `nvbootctrl is-unified-enabled` by its exit code.
enum class UnifiedAb { kEnabled, kRootfsOnly, kDisabled, kUnknown };
UnifiedAb UnifiedAbFromExitCode(int exit_code);

class Nvbootctrl {
 public:
  // `binary` is looked up on PATH when it has no '/'.
  explicit Nvbootctrl(std::string binary = "nvbootctrl",
                      NvbootctrlTarget target = NvbootctrlTarget::kRootfs)
      : binary_(std::move(binary)), target_(target) {}

  NvbootctrlTarget target() const { return target_; }

  absl::StatusOr<int> GetCurrentSlot() const;
  absl::StatusOr<int> GetNumberSlots() const;
  absl::Status SetActiveBootSlot(int slot) const;
  absl::Status SetSlotAsUnbootable(int slot) const;
  absl::Status MarkBootSuccessful() const;
  absl::StatusOr<bool> IsSlotBootable(int slot) const;
  absl::StatusOr<bool> IsSlotMarkedSuccessful(int slot) const;
  absl::StatusOr<std::string> DumpSlotsInfo() const;
  // The command's result whatever its exit code (UEFI's verify is advisory).
  absl::StatusOr<sys::CommandResult> Verify() const;
  // Always asked without -t (a property of the bootloader). kUnknown for other exit codes.
  absl::StatusOr<UnifiedAb> IsUnifiedEnabled() const;

 private:
  std::vector<std::string> Args(std::string_view command, int slot = -1) const;
  absl::StatusOr<std::string> Run(std::string_view command, int slot = -1) const;
  absl::StatusOr<bool> Query(std::string_view command, int slot) const;

  std::string binary_;
  NvbootctrlTarget target_;
};

}  // namespace ota::boot
