#include "otaclient/boot/slot_state_store.h"

#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "common/fs/fs.h"
#include "common/fs/rooted.h"
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
absl::StatusOr<std::string> ReadOptional(const fs::RootedDir& root, const std::string& path) {
  absl::StatusOr<std::string> content = root.ReadFile(path);
  if (absl::IsNotFound(content.status())) return std::string();
  if (!content.ok()) return content.status();
  return std::string(TrimSpace(*content));
}

}  // namespace

std::string SlotStateStore::PathOf(std::string_view name) const {
  return rel_.empty() ? std::string(name) : StrCat(rel_, "/", name);
}

absl::StatusOr<SlotState> SlotStateStore::Load() const {
  SlotState state;
  absl::StatusOr<fs::RootedDir> root = fs::RootedDir::Open(root_);
  if (absl::IsNotFound(root.status())) return state;
  if (!root.ok()) return root.status();
  const std::string status_path = PathOf(kStatusFile);
  OTA_ASSIGN_OR_RETURN(std::string status_name, ReadOptional(*root, status_path));
  if (!status_name.empty()) {
    absl::StatusOr<SlotStatus> status = ParseSlotStatus(status_name);
    if (!status.ok()) {
      return absl::DataLossError(
          StrCat(root->Describe(status_path), ": ", status.status().message()));
    }
    state.status = *status;
  }
  OTA_ASSIGN_OR_RETURN(state.version, ReadOptional(*root, PathOf(kVersionFile)));
  OTA_ASSIGN_OR_RETURN(state.slot_in_use, ReadOptional(*root, PathOf(kSlotInUseFile)));
  OTA_ASSIGN_OR_RETURN(state.failure_reason, ReadOptional(*root, PathOf(kFailureReasonFile)));
  return state;
}

absl::Status SlotStateStore::WriteField(std::string_view name, std::string_view value) {
  if (rel_.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(root_, ec);
    if (ec) return ErrnoStatus(ec.value(), StrCat("create ", root_.string()));
  }
  OTA_ASSIGN_OR_RETURN(fs::RootedDir root, fs::RootedDir::Open(root_));
  if (!rel_.empty()) OTA_RETURN_IF_ERROR(root.MakeDirs(rel_));
  fs::RootedDir::FileAttrs attrs;
  attrs.mode = 0644;
  attrs.uid = ::geteuid();
  attrs.gid = ::getegid();
  return root.WriteFileDurably(PathOf(name), value, attrs);
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
  absl::StatusOr<fs::RootedDir> root = fs::RootedDir::Open(root_);
  if (absl::IsNotFound(root.status())) return absl::OkStatus();
  if (!root.ok()) return root.status();
  return root->RemoveFileDurably(PathOf(kFailureReasonFile));
}

}  // namespace ota::boot
