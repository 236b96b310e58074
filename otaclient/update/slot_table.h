// What the updater wrote onto a slot, kept on that slot so that the next-but-one update can
// write it in place (only what changed) instead of rebuilding it:
//   <slot>/.ota-meta/slot-table   the regular files of the image written there: path, sha256,
//                                 size and what we observed of the file right after writing it
//                                 (inode, mtime, ctime). A file whose inode, size, mtime and
//                                 ctime still match may be trusted to hold that sha256 without
//                                 rehashing (any write, rename, chmod or chown changes its ctime);
//                                 anything else is rehashed.
//   <slot>/.ota-meta/slot-table-overlay
//                                 entries that override the table's (same format): what an
//                                 in-place update that kept the table wrote or touched since
//                                 (replaced files, fixed owners/modes, files it rehashed), so the
//                                 next update trusts them without rehashing. Absent: empty. A
//                                 rewrite of the table removes it.
//   <slot>/.ota-meta/state        "writing\n" or "complete\n", written durably (temp + fsync +
//                                 rename): "writing" before the first in-place change to the
//                                 slot, "complete" only after the update was applied and synced
//                                 and the new table written.
// The table format (little endian): "OTASLOT1", u32 count, then per entry: u32 path size, path
// bytes (absolute, no NUL), 32 bytes sha256, u64 size, u64 inode, i64 mtime s, u32 mtime ns,
// i64 ctime s, u32 ctime ns. Nothing may follow the last entry.
//
// The decision rule (DecideStandbyMode) is a pure function of the configured mode and these
// facts, so it is table-tested; the session gathers the facts and logs the decision.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/crypto/sha256.h"
#include "common/fs/rooted.h"

namespace ota::update {

inline constexpr std::string_view kMetaPath = "/.ota-meta";
inline constexpr std::string_view kMetaDir = kMetaPath.substr(1);
inline constexpr std::string_view kSlotTableFile = ".ota-meta/slot-table";
inline constexpr std::string_view kSlotOverlayFile = ".ota-meta/slot-table-overlay";
inline constexpr std::string_view kSlotStateFile = ".ota-meta/state";

// What we observed of a regular file right after writing it.
struct FileObservation {
  uint64_t size = 0;
  uint64_t inode = 0;
  int64_t mtime_sec = 0;
  uint32_t mtime_nsec = 0;
  int64_t ctime_sec = 0;
  uint32_t ctime_nsec = 0;

  static FileObservation FromStat(const struct stat& st);
  bool operator==(const FileObservation&) const = default;
};

struct SlotTableEntry {
  std::string path;  // absolute
  crypto::Sha256Digest sha256{};
  FileObservation seen;
  bool operator==(const SlotTableEntry&) const = default;
};

class SlotTable {
 public:
  void Add(SlotTableEntry entry);
  // Replaces the entry of the same path, or adds it.
  void Put(SlotTableEntry entry);
  size_t size() const { return entries_.size(); }
  const std::vector<SlotTableEntry>& entries() const { return entries_; }
  // The entry for `path`, or nullptr.
  const SlotTableEntry* Find(std::string_view path) const;

  std::string Serialize() const;
  // Strict: bad magic, truncation, trailing bytes, a path that is empty, not absolute, holds a
  // NUL, or a duplicate are kInvalidArgument naming `what` and the entry.
  static absl::StatusOr<SlotTable> Parse(std::string_view data, std::string_view what);

 private:
  std::vector<SlotTableEntry> entries_;
  absl::flat_hash_map<std::string_view, size_t> by_path_;  // views into entries_[i].path
};

enum class SlotTableState { kMissing, kUnreadable, kWriting, kComplete };
std::string_view SlotTableStateName(SlotTableState state);

// The table and its state as found on a slot. kUnreadable covers a state without a table, a
// table that does not parse and a state file with anything but the two words.
struct SlotRecord {
  SlotTableState state = SlotTableState::kMissing;
  std::string problem;             // why kUnreadable
  std::optional<SlotTable> table;  // the table with the overlay applied
  SlotTable overlay;               // the overlay alone (empty when absent)
};
SlotRecord ReadSlotRecord(const fs::RootedDir& slot);
// "writing", durably, before the first in-place change.
absl::Status MarkSlotWriting(fs::RootedDir& slot);
// The new table, then "complete", both durably. Call after the slot was synced.
absl::Status WriteSlotRecordComplete(fs::RootedDir& slot, const SlotTable& table);
// The new overlay, then "complete", both durably, for the table already there (state
// "writing"): an in-place update that keeps the earlier table. The overlay holds what the update
// wrote or touched (in_place.h RecordSlotOverlay); anything else it changed behind the record's
// back (persistent files) no longer matches its entry and is rehashed next time, since an entry is
// trusted only while the file's inode, size, mtime and ctime are unchanged; entries of removed
// paths match nothing.
// `overlay` nullptr: the overlay already there stays as it is.
absl::Status MarkSlotComplete(fs::RootedDir& slot, const SlotTable* overlay);
// In-place updates rewrite the slot table when more than 1/kTableRewriteShare of the image's
// regular files were not vouched for by it, or the overlay would grow beyond that share; else
// they keep it (writing 300k entries, ~30 MB, would cost more than a small update writes).
inline constexpr uint64_t kTableRewriteShare = 10;

// --standby-mode.
enum class StandbyModeSetting { kAuto, kInPlace, kRebuild };
absl::StatusOr<StandbyModeSetting> ParseStandbyModeSetting(std::string_view text);
std::string_view StandbyModeSettingName(StandbyModeSetting setting);

struct StandbyFacts {
  bool filesystem_fit = false;  // kept by the backend: ext4 and e2fsck -n clean (dir: always)
  std::string filesystem_reason;
  SlotTableState table = SlotTableState::kMissing;
};
struct StandbyDecision {
  bool in_place = false;
  bool reverify = false;  // in place without trusting the table: every file is rehashed
  std::string reason;
};
// auto: in place when the file system is fit and the slot's record is complete (trusted) or
// writing (re-verified); else rebuild. in-place: as auto, and also with no/unreadable record
// (re-verified); a file system that is not fit still means rebuild (it was already reformatted or
// cleaned by the backend). rebuild: always rebuild.
StandbyDecision DecideStandbyMode(StandbyModeSetting setting, const StandbyFacts& facts);

}  // namespace ota::update
