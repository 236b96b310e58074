// Wrapper around NVIDIA's `nvbootctrl -t rootfs` (Jetson CBoot rootfs A/B slots). Every call
// runs the CLI; its output is parsed strictly (a slot is exactly "0" or "1" plus one optional
// newline — anything else is an error naming the command and what it printed).
//
//   get-current-slot                → the slot the machine booted
//   get-number-slots                → must be 2
//   set-active-boot-slot N          → boot N from now on (CBoot resets its retry count; a slot
//                                     never marked successful falls back after the retries)
//   set-slot-as-unbootable N        → CBoot will not boot N
//   mark-boot-successful            → the current slot booted fine (takes no slot argument)
//   is-slot-bootable N / is-slot-marked-successful N → exit 0 yes, exit 1..125 no
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ota::boot {

// Parses the output of `get-current-slot`: "0" or "1", optionally followed by exactly one "\n".
absl::StatusOr<int> ParseNvbootctrlSlot(std::string_view output);
// Parses the output of `get-number-slots`: a decimal count 1..9 plus an optional "\n".
absl::StatusOr<int> ParseNvbootctrlSlotCount(std::string_view output);

class Nvbootctrl {
 public:
  // `binary` is looked up on PATH when it has no '/'.
  explicit Nvbootctrl(std::string binary = "nvbootctrl") : binary_(std::move(binary)) {}

  absl::StatusOr<int> GetCurrentSlot() const;
  absl::StatusOr<int> GetNumberSlots() const;
  absl::Status SetActiveBootSlot(int slot) const;
  absl::Status SetSlotAsUnbootable(int slot) const;
  absl::Status MarkBootSuccessful() const;
  absl::StatusOr<bool> IsSlotBootable(int slot) const;
  absl::StatusOr<bool> IsSlotMarkedSuccessful(int slot) const;

 private:
  std::vector<std::string> Args(std::string_view command, int slot = -1) const;
  absl::StatusOr<std::string> Run(std::string_view command, int slot = -1) const;
  absl::StatusOr<bool> Query(std::string_view command, int slot) const;

  std::string binary_;
};

}  // namespace ota::boot
