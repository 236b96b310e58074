// Per-slot persisted state, backend-neutral: one directory per slot holding small text files
//   status          SlotStatus name (boot_controller.h), e.g. "UPDATING"
//   version         firmware version of the image in that slot
//   slot_in_use     the slot the last operation expects to run next (upstream-compatible name)
//   failure_reason  why the last update/rollback of that slot failed (absent otherwise)
//   version_detail  the image's release as one line of JSON, exactly as the Python client writes
//                   it: {"release_name": "…", "release_id": "…", "image_id": "…"} (json.dumps
//                   defaults: ", " and ": " separators, non-ASCII as \uXXXX, no newline); only
//                   when all three are set
// GRUB keeps the directories on the shared boot partition (<boot>/ota-slots/slot_<x>/); Jetson
// CBoot keeps them inside each slot's own rootfs (<slot root>/boot/ota-status/). Every write is
// atomic and durable (temp file + fsync + rename + directory fsync): after a crash each file
// holds either its old or its new content, never a mix.
//
// Every read and write goes through a RootedDir (common/fs/rooted.h): a store inside a slot is
// opened with the slot's root, so a symlink that came with an image (an absolute /boot, a
// /boot/ota-status pointing elsewhere) resolves inside that slot, never onto the other one, and
// the files themselves are never followed.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "otaclient/boot/boot_controller.h"

namespace ota::boot {

// Where Jetson and Raspberry Pi slots keep their status files: inside each slot's own rootfs.
inline constexpr std::string_view kInRootfsStatusDir = "boot/ota-status";

struct SlotState {
  std::optional<SlotStatus> status;  // nullopt: no status file (never managed)
  std::string version;               // "" when absent
  std::string slot_in_use;           // "" when absent
  std::string failure_reason;        // "" when absent
  ReleaseInfo release;               // all "" when absent or unparsable

  bool operator==(const SlotState&) const = default;
};

// version_detail's text for `release` (the Python client's json.dumps output, byte for byte).
std::string FormatVersionDetail(const ReleaseInfo& release);
// Reads version_detail like upstream: a JSON object whose missing (or non-string) keys read as
// ""; anything else (not JSON, not an object, NUL bytes) is nullopt, treated as absent.
std::optional<ReleaseInfo> ParseVersionDetail(std::string_view text);

class SlotStateStore {
 public:
  static constexpr std::string_view kStatusFile = "status";
  static constexpr std::string_view kVersionFile = "version";
  static constexpr std::string_view kSlotInUseFile = "slot_in_use";
  static constexpr std::string_view kFailureReasonFile = "failure_reason";
  static constexpr std::string_view kVersionDetailFile = "version_detail";
  // Like upstream, a longer version file is read cut to this many bytes.
  static constexpr size_t kMaxVersionBytes = 2048;

  // The store is the directory `dir` itself (created when missing).
  explicit SlotStateStore(std::filesystem::path dir) : root_(std::move(dir)), dir_(root_) {}
  // The store is `dir_in_root` inside the slot mounted at `root` ("boot/ota-status").
  SlotStateStore(std::filesystem::path root, std::string dir_in_root)
      : root_(std::move(root)), rel_(std::move(dir_in_root)), dir_(root_ / rel_) {}

  // For messages: where the files are.
  const std::filesystem::path& dir() const { return dir_; }

  // Missing directory or files read as empty fields. A status file with an unknown name is
  // kDataLoss naming the file (never silently treated as INITIALIZED). Values are trimmed of
  // surrounding whitespace/newlines (upstream wrote them without a newline, some tools add one).
  absl::StatusOr<SlotState> Load() const;

  // Each creates the directory when missing and replaces one file atomically.
  absl::Status WriteStatus(SlotStatus status);
  absl::Status WriteVersion(std::string_view version);
  absl::Status WriteSlotInUse(std::string_view slot);
  // "" removes the file (durably).
  absl::Status WriteFailureReason(std::string_view reason);
  // version_detail when `release` is complete(), else the file is removed (durably).
  absl::Status WriteRelease(const ReleaseInfo& release);

 private:
  absl::Status WriteField(std::string_view name, std::string_view value);
  absl::Status RemoveField(std::string_view name);
  std::string PathOf(std::string_view name) const;

  std::filesystem::path root_;
  std::string rel_;  // "" when the root is the store
  std::filesystem::path dir_;
};

}  // namespace ota::boot
