#include "otaclient/boot/nvbootctrl.h"

#include "common/log/log.h"
#include "common/sys/command.h"
#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::boot {
namespace {

// Printable rendering of untrusted output for error messages (bounded, control bytes escaped).
std::string Quote(std::string_view text) {
  constexpr size_t kMax = 64;
  std::string out = "'";
  for (size_t i = 0; i < text.size() && i < kMax; ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c >= 0x7f || c == '\'' || c == '\\') {
      constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  if (text.size() > kMax) out += "...";
  out += "'";
  return out;
}

// One decimal digit plus an optional single trailing newline.
absl::StatusOr<int> ParseSingleDigit(std::string_view output, std::string_view what) {
  std::string_view body = output;
  if (!body.empty() && body.back() == '\n') body.remove_suffix(1);
  if (body.size() != 1 || body[0] < '0' || body[0] > '9') {
    return absl::InternalError(
        StrCat("nvbootctrl ", what, ": expected a single digit, got ", Quote(output)));
  }
  return body[0] - '0';
}

}  // namespace

absl::StatusOr<int> ParseNvbootctrlSlot(std::string_view output) {
  OTA_ASSIGN_OR_RETURN(int slot, ParseSingleDigit(output, "get-current-slot"));
  if (slot > 1) {
    return absl::InternalError(
        StrCat("nvbootctrl get-current-slot: slot ", slot, " is not 0 or 1"));
  }
  return slot;
}

absl::StatusOr<int> ParseNvbootctrlSlotCount(std::string_view output) {
  OTA_ASSIGN_OR_RETURN(int count, ParseSingleDigit(output, "get-number-slots"));
  if (count == 0) return absl::InternalError("nvbootctrl get-number-slots: 0 slots");
  return count;
}

UnifiedAb UnifiedAbFromExitCode(int exit_code) {
  switch (exit_code) {
    case 0:
      return UnifiedAb::kEnabled;
    case 70:
      return UnifiedAb::kRootfsOnly;
    case 69:
      return UnifiedAb::kDisabled;
    default:
      return UnifiedAb::kUnknown;
  }
}

std::vector<std::string> Nvbootctrl::Args(std::string_view command, int slot) const {
  std::vector<std::string> args = {binary_};
  if (target_ == NvbootctrlTarget::kRootfs) args.insert(args.end(), {"-t", "rootfs"});
  args.emplace_back(command);
  if (slot >= 0) args.push_back(std::to_string(slot));
  return args;
}

absl::StatusOr<std::string> Nvbootctrl::Run(std::string_view command, int slot) const {
  std::vector<std::string> args = Args(command, slot);
  log::Debug("nvbootctrl", {{"command", sys::DescribeArgv(args)}});
  return sys::RunProgramChecked(args, kNvbootctrlTimeout);
}

absl::StatusOr<bool> Nvbootctrl::Query(std::string_view command, int slot) const {
  std::vector<std::string> args = Args(command, slot);
  OTA_ASSIGN_OR_RETURN(sys::CommandResult result, sys::RunProgram(args, kNvbootctrlTimeout));
  if (result.exit_code == 0) return true;
  // 126/127: the shell's "cannot execute"/"not found"; >128: killed by a signal. Neither is
  // an answer.
  if (result.exit_code >= 126) {
    return absl::InternalError(StrCat("`", sys::DescribeArgv(args), "` failed with exit ",
                                      result.exit_code, ": ", Quote(result.err)));
  }
  return false;
}

absl::StatusOr<int> Nvbootctrl::GetCurrentSlot() const {
  OTA_ASSIGN_OR_RETURN(std::string out, Run("get-current-slot"));
  return ParseNvbootctrlSlot(out);
}

absl::StatusOr<int> Nvbootctrl::GetNumberSlots() const {
  OTA_ASSIGN_OR_RETURN(std::string out, Run("get-number-slots"));
  return ParseNvbootctrlSlotCount(out);
}

absl::Status Nvbootctrl::SetActiveBootSlot(int slot) const {
  return Run("set-active-boot-slot", slot).status();
}

absl::Status Nvbootctrl::SetSlotAsUnbootable(int slot) const {
  return Run("set-slot-as-unbootable", slot).status();
}

absl::Status Nvbootctrl::MarkBootSuccessful() const { return Run("mark-boot-successful").status(); }

absl::StatusOr<bool> Nvbootctrl::IsSlotBootable(int slot) const {
  return Query("is-slot-bootable", slot);
}

absl::StatusOr<bool> Nvbootctrl::IsSlotMarkedSuccessful(int slot) const {
  return Query("is-slot-marked-successful", slot);
}

absl::StatusOr<std::string> Nvbootctrl::DumpSlotsInfo() const { return Run("dump-slots-info"); }

absl::StatusOr<sys::CommandResult> Nvbootctrl::Verify() const {
  std::vector<std::string> args = Args("verify");
  log::Debug("nvbootctrl", {{"command", sys::DescribeArgv(args)}});
  return sys::RunProgram(args, kNvbootctrlTimeout);
}

absl::StatusOr<UnifiedAb> Nvbootctrl::IsUnifiedEnabled() const {
  const std::vector<std::string> args = {binary_, "is-unified-enabled"};
  log::Debug("nvbootctrl", {{"command", sys::DescribeArgv(args)}});
  OTA_ASSIGN_OR_RETURN(sys::CommandResult result, sys::RunProgram(args, kNvbootctrlTimeout));
  if (result.exit_code >= 126) {
    return absl::InternalError(StrCat("`", sys::DescribeArgv(args), "` failed with exit ",
                                      result.exit_code, ": ", Quote(result.err)));
  }
  return UnifiedAbFromExitCode(result.exit_code);
}

}  // namespace ota::boot
