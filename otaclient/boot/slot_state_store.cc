#include "otaclient/boot/slot_state_store.h"

#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "common/fs/fs.h"
#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::boot {
namespace {

std::string_view TrimSpace(std::string_view s) {
  constexpr std::string_view kSpace = " \t\r\n";
  size_t begin = s.find_first_not_of(kSpace);
  if (begin == std::string_view::npos) return {};
  size_t end = s.find_last_not_of(kSpace);
  return s.substr(begin, end - begin + 1);
}

// "" when the file does not exist.
absl::StatusOr<std::string> ReadOptional(const std::filesystem::path& path) {
  absl::StatusOr<std::string> content = fs::ReadFile(path);
  if (absl::IsNotFound(content.status())) return std::string();
  if (!content.ok()) return content.status();
  return std::string(TrimSpace(*content));
}

}  // namespace

absl::StatusOr<SlotState> SlotStateStore::Load() const {
  SlotState state;
  const std::filesystem::path status_path = dir_ / std::string(kStatusFile);
  OTA_ASSIGN_OR_RETURN(std::string status_name, ReadOptional(status_path));
  if (!status_name.empty()) {
    absl::StatusOr<SlotStatus> status = ParseSlotStatus(status_name);
    if (!status.ok()) {
      return absl::DataLossError(StrCat(status_path.string(), ": ", status.status().message()));
    }
    state.status = *status;
  }
  OTA_ASSIGN_OR_RETURN(state.version, ReadOptional(dir_ / std::string(kVersionFile)));
  OTA_ASSIGN_OR_RETURN(state.slot_in_use, ReadOptional(dir_ / std::string(kSlotInUseFile)));
  OTA_ASSIGN_OR_RETURN(state.failure_reason, ReadOptional(dir_ / std::string(kFailureReasonFile)));
  return state;
}

absl::Status SlotStateStore::WriteField(std::string_view name, std::string_view value) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return ErrnoStatus(ec.value(), StrCat("create ", dir_.string()));
  return fs::WriteFileAtomic(dir_ / std::string(name), value);
}

absl::Status SlotStateStore::WriteStatus(SlotStatus status) {
  return WriteField(kStatusFile, SlotStatusName(status));
}

absl::Status SlotStateStore::WriteVersion(std::string_view version) {
  return WriteField(kVersionFile, version);
}

absl::Status SlotStateStore::WriteSlotInUse(std::string_view slot) {
  return WriteField(kSlotInUseFile, slot);
}

absl::Status SlotStateStore::WriteFailureReason(std::string_view reason) {
  if (!reason.empty()) return WriteField(kFailureReasonFile, reason);
  const std::filesystem::path path = dir_ / std::string(kFailureReasonFile);
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoStatus(errno, StrCat("remove ", path.string()));
  }
  return fs::SyncDir(dir_);
}

}  // namespace ota::boot
