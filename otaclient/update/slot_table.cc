#include "otaclient/update/slot_table.h"

#include <cstring>
#include <utility>

#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::update {
namespace {

constexpr std::string_view kMagic = "OTASLOT1";
constexpr std::string_view kWriting = "writing\n";
constexpr std::string_view kComplete = "complete\n";
// Fixed part of an entry after its path: sha256, size, inode, mtime s/ns, ctime s/ns.
constexpr size_t kFixedBytes = 32 + 8 + 8 + 8 + 4 + 8 + 4;
constexpr size_t kMaxPathBytes = 4096;

template <typename T>
void PutLe(std::string& out, T value) {
  using U = std::make_unsigned_t<T>;
  U v = static_cast<U>(value);
  for (size_t i = 0; i < sizeof(U); ++i) {
    out.push_back(static_cast<char>(v & 0xff));
    if constexpr (sizeof(U) > 1) v = static_cast<U>(v >> 8);
  }
}

class Reader {
 public:
  explicit Reader(std::string_view data) : rest_(data) {}
  bool Take(size_t n, std::string_view& out) {
    if (rest_.size() < n) return false;
    out = rest_.substr(0, n);
    rest_.remove_prefix(n);
    return true;
  }
  template <typename T>
  bool Le(T& value) {
    using U = std::make_unsigned_t<T>;
    std::string_view bytes;
    if (!Take(sizeof(U), bytes)) return false;
    U v = 0;
    for (size_t i = sizeof(U); i-- > 0;) {
      v = static_cast<U>(v << 8 | static_cast<uint8_t>(bytes[i]));
    }
    value = static_cast<T>(v);
    return true;
  }
  bool empty() const { return rest_.empty(); }

 private:
  std::string_view rest_;
};

}  // namespace

FileObservation FileObservation::FromStat(const struct stat& st) {
  FileObservation o;
  o.size = static_cast<uint64_t>(st.st_size);
  o.inode = static_cast<uint64_t>(st.st_ino);
  o.mtime_sec = st.st_mtim.tv_sec;
  o.mtime_nsec = static_cast<uint32_t>(st.st_mtim.tv_nsec);
  o.ctime_sec = st.st_ctim.tv_sec;
  o.ctime_nsec = static_cast<uint32_t>(st.st_ctim.tv_nsec);
  return o;
}

void SlotTable::Add(SlotTableEntry entry) {
  const size_t capacity = entries_.capacity();
  entries_.push_back(std::move(entry));
  if (entries_.capacity() != capacity) {
    // Reallocated: the views into short (SSO) strings moved with them; index again.
    by_path_.clear();
    by_path_.reserve(entries_.capacity());
    for (size_t i = 0; i < entries_.size(); ++i) by_path_.emplace(entries_[i].path, i);
  } else {
    by_path_.emplace(entries_.back().path, entries_.size() - 1);
  }
}

void SlotTable::Put(SlotTableEntry entry) {
  auto it = by_path_.find(entry.path);
  if (it == by_path_.end()) {
    Add(std::move(entry));
    return;
  }
  // The key views the entry's old string: key the new one.
  const size_t i = it->second;
  by_path_.erase(it);
  entries_[i] = std::move(entry);
  by_path_.emplace(entries_[i].path, i);
}

const SlotTableEntry* SlotTable::Find(std::string_view path) const {
  auto it = by_path_.find(path);
  return it == by_path_.end() ? nullptr : &entries_[it->second];
}

std::string SlotTable::Serialize() const {
  std::string out(kMagic);
  size_t bytes = out.size() + 4;
  for (const auto& e : entries_) bytes += 4 + e.path.size() + kFixedBytes;
  out.reserve(bytes);
  PutLe(out, static_cast<uint32_t>(entries_.size()));
  for (const auto& e : entries_) {
    PutLe(out, static_cast<uint32_t>(e.path.size()));
    out.append(e.path);
    out.append(reinterpret_cast<const char*>(e.sha256.data()), e.sha256.size());
    PutLe(out, e.seen.size);
    PutLe(out, e.seen.inode);
    PutLe(out, e.seen.mtime_sec);
    PutLe(out, e.seen.mtime_nsec);
    PutLe(out, e.seen.ctime_sec);
    PutLe(out, e.seen.ctime_nsec);
  }
  return out;
}

absl::StatusOr<SlotTable> SlotTable::Parse(std::string_view data, std::string_view what) {
  Reader r(data);
  std::string_view magic;
  if (!r.Take(kMagic.size(), magic) || magic != kMagic) {
    return absl::InvalidArgumentError(StrCat(what, ": not a slot table (bad magic)"));
  }
  uint32_t count = 0;
  if (!r.Le(count)) return absl::InvalidArgumentError(StrCat(what, ": truncated header"));
  // Every entry takes at least 4 + 1 + kFixedBytes bytes: a count beyond that is a lie, and must
  // not make us reserve gigabytes.
  if (count > data.size() / (4 + 1 + kFixedBytes)) {
    return absl::InvalidArgumentError(
        StrCat(what, ": says ", count, " entries, more than its ", data.size(), " bytes can hold"));
  }
  std::vector<SlotTableEntry> entries;
  entries.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    auto bad = [&](std::string_view why) {
      return absl::InvalidArgumentError(StrCat(what, ": entry ", i, ": ", why));
    };
    uint32_t path_size = 0;
    std::string_view path;
    if (!r.Le(path_size) || !r.Take(path_size, path)) return bad("truncated path");
    if (path.empty() || path.front() != '/') return bad("path is not absolute");
    if (path.size() > kMaxPathBytes) return bad("path too long");
    if (path.find('\0') != std::string_view::npos) return bad("path holds a NUL byte");
    SlotTableEntry e;
    e.path = std::string(path);
    std::string_view sha;
    if (!r.Take(32, sha)) return bad("truncated sha256");
    std::memcpy(e.sha256.data(), sha.data(), 32);
    if (!r.Le(e.seen.size) || !r.Le(e.seen.inode) || !r.Le(e.seen.mtime_sec) ||
        !r.Le(e.seen.mtime_nsec) || !r.Le(e.seen.ctime_sec) || !r.Le(e.seen.ctime_nsec)) {
      return bad("truncated");
    }
    if (e.seen.mtime_nsec >= 1'000'000'000 || e.seen.ctime_nsec >= 1'000'000'000) {
      return bad("nanoseconds out of range");
    }
    entries.push_back(std::move(e));
  }
  if (!r.empty()) return absl::InvalidArgumentError(StrCat(what, ": bytes after the last entry"));
  SlotTable table;
  table.entries_ = std::move(entries);
  table.by_path_.reserve(table.entries_.size());
  for (size_t i = 0; i < table.entries_.size(); ++i) {
    if (!table.by_path_.emplace(table.entries_[i].path, i).second) {
      return absl::InvalidArgumentError(
          StrCat(what, ": entry ", i, ": duplicate path ", table.entries_[i].path));
    }
  }
  return table;
}

std::string_view SlotTableStateName(SlotTableState state) {
  switch (state) {
    case SlotTableState::kMissing:
      return "missing";
    case SlotTableState::kUnreadable:
      return "unreadable";
    case SlotTableState::kWriting:
      return "writing";
    case SlotTableState::kComplete:
      return "complete";
  }
  return "unknown";
}

SlotRecord ReadSlotRecord(const fs::RootedDir& slot) {
  SlotRecord record;
  absl::StatusOr<std::string> state = slot.ReadFile(kSlotStateFile);
  if (!state.ok()) {
    if (absl::IsNotFound(state.status())) return record;  // kMissing
    record.state = SlotTableState::kUnreadable;
    record.problem = std::string(state.status().message());
    return record;
  }
  if (*state != kWriting && *state != kComplete) {
    record.state = SlotTableState::kUnreadable;
    record.problem = StrCat(slot.Describe(kSlotStateFile), ": unknown state");
    return record;
  }
  absl::StatusOr<std::string> data = slot.ReadFile(kSlotTableFile);
  absl::StatusOr<SlotTable> table =
      data.ok() ? SlotTable::Parse(*data, slot.Describe(kSlotTableFile)) : data.status();
  if (!table.ok()) {
    record.state = SlotTableState::kUnreadable;
    record.problem = std::string(table.status().message());
    return record;
  }
  absl::StatusOr<std::string> overlay_data = slot.ReadFile(kSlotOverlayFile);
  if (overlay_data.ok()) {
    absl::StatusOr<SlotTable> overlay =
        SlotTable::Parse(*overlay_data, slot.Describe(kSlotOverlayFile));
    if (!overlay.ok()) {
      record.state = SlotTableState::kUnreadable;
      record.problem = std::string(overlay.status().message());
      return record;
    }
    for (const SlotTableEntry& e : overlay->entries()) table->Put(e);
    record.overlay = *std::move(overlay);
  } else if (!absl::IsNotFound(overlay_data.status())) {
    record.state = SlotTableState::kUnreadable;
    record.problem = std::string(overlay_data.status().message());
    return record;
  }
  record.table = *std::move(table);
  record.state = *state == kComplete ? SlotTableState::kComplete : SlotTableState::kWriting;
  return record;
}

absl::Status MarkSlotWriting(fs::RootedDir& slot) {
  OTA_RETURN_IF_ERROR(slot.MakeDirs(kMetaDir, 0700));
  fs::RootedDir::FileAttrs attrs;
  attrs.mode = 0600;
  attrs.uid = ::geteuid();
  attrs.gid = ::getegid();
  return slot.WriteFileDurably(kSlotStateFile, kWriting, attrs);
}

absl::Status WriteSlotRecordComplete(fs::RootedDir& slot, const SlotTable& table) {
  OTA_RETURN_IF_ERROR(slot.MakeDirs(kMetaDir, 0700));
  fs::RootedDir::FileAttrs attrs;
  attrs.mode = 0600;
  attrs.uid = ::geteuid();
  attrs.gid = ::getegid();
  // "writing" first: a crash between the two writes must not pair a new table with an old
  // "complete" (a rebuild leaves no state; an in-place update wrote "writing" already).
  OTA_RETURN_IF_ERROR(slot.WriteFileDurably(kSlotStateFile, kWriting, attrs));
  OTA_RETURN_IF_ERROR(slot.WriteFileDurably(kSlotTableFile, table.Serialize(), attrs));
  // An overlay of the earlier table would override the new one's entries.
  OTA_RETURN_IF_ERROR(slot.RemoveFileDurably(kSlotOverlayFile));
  return slot.WriteFileDurably(kSlotStateFile, kComplete, attrs);
}

absl::Status MarkSlotComplete(fs::RootedDir& slot, const SlotTable* overlay) {
  fs::RootedDir::FileAttrs attrs;
  attrs.mode = 0600;
  attrs.uid = ::geteuid();
  attrs.gid = ::getegid();
  // The state is "writing" since before the first change: a crash before "complete" leaves a
  // slot that is re-verified whatever the overlay holds.
  if (overlay != nullptr) {
    OTA_RETURN_IF_ERROR(slot.WriteFileDurably(kSlotOverlayFile, overlay->Serialize(), attrs));
  }
  return slot.WriteFileDurably(kSlotStateFile, kComplete, attrs);
}

absl::StatusOr<StandbyModeSetting> ParseStandbyModeSetting(std::string_view text) {
  if (text == "auto") return StandbyModeSetting::kAuto;
  if (text == "in-place") return StandbyModeSetting::kInPlace;
  if (text == "rebuild") return StandbyModeSetting::kRebuild;
  return absl::InvalidArgumentError(
      StrCat("standby mode \"", text, "\": expected auto, in-place or rebuild"));
}

std::string_view StandbyModeSettingName(StandbyModeSetting setting) {
  switch (setting) {
    case StandbyModeSetting::kAuto:
      return "auto";
    case StandbyModeSetting::kInPlace:
      return "in-place";
    case StandbyModeSetting::kRebuild:
      return "rebuild";
  }
  return "unknown";
}

StandbyDecision DecideStandbyMode(StandbyModeSetting setting, const StandbyFacts& facts) {
  StandbyDecision d;
  if (setting == StandbyModeSetting::kRebuild) {
    d.reason = "standby mode forced to rebuild";
    return d;
  }
  if (!facts.filesystem_fit) {
    d.reason = StrCat("standby file system not fit for in-place: ", facts.filesystem_reason);
    return d;
  }
  switch (facts.table) {
    case SlotTableState::kComplete:
      d.in_place = true;
      d.reason = "standby holds a complete earlier update (slot table trusted)";
      return d;
    case SlotTableState::kWriting:
      d.in_place = true;
      d.reverify = true;
      d.reason = "standby's last update was interrupted: in place, every file re-verified";
      return d;
    case SlotTableState::kMissing:
    case SlotTableState::kUnreadable:
      if (setting == StandbyModeSetting::kInPlace) {
        d.in_place = true;
        d.reverify = true;
        d.reason = StrCat("standby mode forced to in-place; no usable slot table (",
                          SlotTableStateName(facts.table), "): every file re-verified");
        return d;
      }
      d.reason =
          StrCat("no usable slot table on the standby (", SlotTableStateName(facts.table), ")");
      return d;
  }
  return d;
}

}  // namespace ota::update
