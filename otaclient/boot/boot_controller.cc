#include "otaclient/boot/boot_controller.h"

#include <array>
#include <utility>

#include "common/util/strings.h"

namespace ota::boot {
namespace {

// Written to disk: never rename an entry.
constexpr std::array<std::pair<SlotStatus, std::string_view>, 7> kNames = {{
    {SlotStatus::kInitialized, "INITIALIZED"},
    {SlotStatus::kUpdating, "UPDATING"},
    {SlotStatus::kSuccess, "SUCCESS"},
    {SlotStatus::kFailure, "FAILURE"},
    {SlotStatus::kRollbacking, "ROLLBACKING"},
    {SlotStatus::kRollbackFailure, "ROLLBACK_FAILURE"},
    {SlotStatus::kAborted, "ABORTED"},
}};

}  // namespace

std::string_view SlotStatusName(SlotStatus status) {
  for (const auto& [value, name] : kNames) {
    if (value == status) return name;
  }
  return "UNKNOWN";
}

absl::StatusOr<SlotStatus> ParseSlotStatus(std::string_view name) {
  // Status files written by hand or by other tools may end with a newline.
  while (!name.empty() && (name.back() == '\n' || name.back() == '\r' || name.back() == ' ')) {
    name.remove_suffix(1);
  }
  for (const auto& [value, text] : kNames) {
    if (text == name) return value;
  }
  return absl::InvalidArgumentError(StrCat("unknown slot status '", name, "'"));
}

}  // namespace ota::boot
