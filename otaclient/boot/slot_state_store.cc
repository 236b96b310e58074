#include "otaclient/boot/slot_state_store.h"

#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "common/fs/fs.h"
#include "common/fs/rooted.h"
#include "common/util/errors.h"
#include "common/util/strings.h"
#include "nlohmann/json.hpp"

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

// A JSON string as Python's json.dumps writes it with ensure_ascii (the default).
std::string JsonString(std::string_view value) {
  return nlohmann::json(std::string(value))
      .dump(-1, ' ', /*ensure_ascii=*/true, nlohmann::json::error_handler_t::replace);
}

}  // namespace

std::string FormatVersionDetail(const ReleaseInfo& release) {
  return StrCat("{\"release_name\": ", JsonString(release.release_name),
                ", \"release_id\": ", JsonString(release.release_id),
                ", \"image_id\": ", JsonString(release.image_id), "}");
}

std::optional<ReleaseInfo> ParseVersionDetail(std::string_view text) {
  if (text.find('\0') != std::string_view::npos) return std::nullopt;
  const nlohmann::json json =
      nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) return std::nullopt;
  auto field = [&json](const char* key) -> std::string {
    auto it = json.find(key);
    return it != json.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  return ReleaseInfo{field("release_name"), field("release_id"), field("image_id")};
}

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
  if (state.version.size() > kMaxVersionBytes) state.version.resize(kMaxVersionBytes);
  OTA_ASSIGN_OR_RETURN(state.slot_in_use, ReadOptional(*root, PathOf(kSlotInUseFile)));
  OTA_ASSIGN_OR_RETURN(state.failure_reason, ReadOptional(*root, PathOf(kFailureReasonFile)));
  OTA_ASSIGN_OR_RETURN(std::string detail, ReadOptional(*root, PathOf(kVersionDetailFile)));
  if (!detail.empty()) state.release = ParseVersionDetail(detail).value_or(ReleaseInfo{});
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

absl::Status SlotStateStore::RemoveField(std::string_view name) {
  absl::StatusOr<fs::RootedDir> root = fs::RootedDir::Open(root_);
  if (absl::IsNotFound(root.status())) return absl::OkStatus();
  if (!root.ok()) return root.status();
  absl::Status removed = root->RemoveFileDurably(PathOf(name));
  // The store's directory itself may be missing (a slot never managed): nothing to remove.
  if (absl::IsNotFound(removed)) return absl::OkStatus();
  return removed;
}

absl::Status SlotStateStore::WriteFailureReason(std::string_view reason) {
  if (!reason.empty()) return WriteField(kFailureReasonFile, reason);
  return RemoveField(kFailureReasonFile);
}

absl::Status SlotStateStore::WriteRelease(const ReleaseInfo& release) {
  if (release.complete()) return WriteField(kVersionDetailFile, FormatVersionDetail(release));
  return RemoveField(kVersionDetailFile);
}

}  // namespace ota::boot
