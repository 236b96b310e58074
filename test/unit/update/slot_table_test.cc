// The slot table (update/slot_table.h): round trip, strict parsing of hostile bytes, the record
// on a real directory (state + table), and the in-place/rebuild decision table.
#include "otaclient/update/slot_table.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "test/unit/update/tree_util.h"

namespace ota::update {
namespace {

namespace stdfs = std::filesystem;

SlotTableEntry Entry(std::string path, uint8_t fill) {
  SlotTableEntry e;
  e.path = std::move(path);
  e.sha256.fill(fill);
  e.seen.size = 1234;
  e.seen.inode = 0xfedcba9876543210ull;
  e.seen.mtime_sec = -5;  // before 1970: kept exactly
  e.seen.mtime_nsec = 999'999'999;
  e.seen.ctime_sec = 1'700'000'000;
  e.seen.ctime_nsec = 1;
  return e;
}

SlotTable Sample() {
  SlotTable t;
  t.Add(Entry("/etc/passwd", 1));
  t.Add(Entry("/usr/lib/x86_64-linux-gnu/libc.so.6", 2));
  t.Add(
      Entry("/opt/app/gr\xC3\xB6\xC3\x9F"
            "e with space\nand newline",
            3));
  for (int i = 0; i < 100; ++i) t.Add(Entry("/many/f" + std::to_string(i), 4));  // reallocations
  return t;
}

TEST(SlotTableTest, RoundTripKeepsEveryFieldAndFindsEveryPath) {
  SlotTable t = Sample();
  absl::StatusOr<SlotTable> back = SlotTable::Parse(t.Serialize(), "test");
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->size(), t.size());
  for (const SlotTableEntry& e : t.entries()) {
    const SlotTableEntry* found = back->Find(e.path);
    ASSERT_NE(found, nullptr) << e.path;
    EXPECT_EQ(*found, e);
    ASSERT_NE(t.Find(e.path), nullptr) << e.path;  // the builder's index survived its growth
  }
  EXPECT_EQ(back->Find("/not/there"), nullptr);
  absl::StatusOr<SlotTable> empty = SlotTable::Parse(SlotTable().Serialize(), "empty");
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->size(), 0u);
}

TEST(SlotTableTest, HostileBytesAreRefusedNamingTheProblem) {
  const std::string good = Sample().Serialize();
  std::string one;
  {
    SlotTable t;
    t.Add(Entry("/a", 1));
    one = t.Serialize();
  }
  std::string long_one;  // one entry whose path is long enough to pass the count check when cut
  {
    SlotTable t;
    t.Add(Entry("/" + std::string(100, 'x'), 1));
    long_one = t.Serialize();
  }
  // Offsets in `one`: magic 0..7, count 8..11, path size 12..15, path 16..17, sha 18..49, size
  // 50..57, inode 58..65, mtime 66..73, mtime ns 74..77, ctime 78..85, ctime ns 86..89.
  auto with = [&](size_t at, std::string bytes) {
    std::string s = one;
    s.replace(at, bytes.size(), bytes);
    return s;
  };
  struct Case {
    std::string name;
    std::string data;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {"empty", "", "bad magic"},
      {"wrong magic", with(0, "OTASLOT2"), "bad magic"},
      {"header cut", one.substr(0, 10), "truncated header"},
      {"count lies (huge)", with(8, std::string("\xff\xff\xff\x7f", 4)), "more than its"},
      {"count says two", with(8, std::string("\x02\x00\x00\x00", 4)), "more than its"},
      {"second entry missing",
       long_one.substr(0, 8) + std::string("\x02\x00\x00\x00", 4) + long_one.substr(12),
       "entry 1: truncated path"},
      {"path size beyond the data", with(12, std::string("\xff\x00\x00\x00", 4)), "truncated path"},
      {"empty path", with(12, std::string("\x00\x00\x00\x00", 4)), "not absolute"},
      {"relative path", with(16, "a"), "not absolute"},
      {"cut in the sha", long_one.substr(0, 130), "truncated sha256"},
      {"cut in the times", long_one.substr(0, long_one.size() - 3), "entry 0: truncated"},
      {"mtime ns out of range", with(74, std::string("\x00\xca\x9a\x3b", 4)), "nanoseconds"},
      {"ctime ns out of range", with(86, std::string("\xff\xff\xff\xff", 4)), "nanoseconds"},
      {"trailing byte", one + "x", "bytes after the last entry"},
      {"trailing table", good + good.substr(8), "bytes after the last entry"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<SlotTable> parsed = SlotTable::Parse(c.data, "t.bin");
    ASSERT_FALSE(parsed.ok()) << c.name;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_NE(parsed.status().message().find(c.expect), std::string::npos)
        << c.name << ": " << parsed.status();
    EXPECT_EQ(parsed.status().message().substr(0, 5), "t.bin") << c.name;
  }
  // A NUL inside a path and a duplicate path.
  {
    SlotTable t;
    t.Add(Entry(std::string("/a\0b", 4), 1));
    absl::StatusOr<SlotTable> parsed = SlotTable::Parse(t.Serialize(), "nul");
    ASSERT_FALSE(parsed.ok());
    EXPECT_NE(parsed.status().message().find("NUL"), std::string::npos) << parsed.status();
  }
  {
    SlotTable t;
    t.Add(Entry("/same", 1));
    t.Add(Entry("/other", 1));
    std::string s = t.Serialize();
    const size_t second_path = s.rfind("/other");
    s.replace(second_path, 6, "/same\0", 6);  // same length, so the entry stays well formed
    s[second_path - 4] = 5;                   // its size: 5
    s.erase(second_path + 5, 1);
    absl::StatusOr<SlotTable> parsed = SlotTable::Parse(s, "dup");
    ASSERT_FALSE(parsed.ok());
    EXPECT_NE(parsed.status().message().find("duplicate path /same"), std::string::npos)
        << parsed.status();
  }
}

class SlotRecordTest : public testing::TempDirTest {};

TEST_F(SlotRecordTest, StateAndTableAreReadBackAndAnythingOddIsUnreadable) {
  absl::StatusOr<fs::RootedDir> slot = fs::RootedDir::Open(tmp());
  ASSERT_TRUE(slot.ok()) << slot.status();
  EXPECT_EQ(ReadSlotRecord(*slot).state, SlotTableState::kMissing);

  ASSERT_TRUE(MarkSlotWriting(*slot).ok());
  // "writing" without a table yet (the first in-place change of a slot rebuilt before issue 18).
  EXPECT_EQ(ReadSlotRecord(*slot).state, SlotTableState::kUnreadable);

  SlotTable table = Sample();
  ASSERT_TRUE(WriteSlotRecordComplete(*slot, table).ok());
  SlotRecord record = ReadSlotRecord(*slot);
  EXPECT_EQ(record.state, SlotTableState::kComplete);
  ASSERT_TRUE(record.table.has_value());
  EXPECT_EQ(record.table->size(), table.size());
  EXPECT_EQ(testing::ReadFile(tmp() / ".ota-meta/state"), "complete\n");
  EXPECT_EQ(stdfs::status(tmp() / ".ota-meta").permissions(), stdfs::perms::owner_all);

  ASSERT_TRUE(MarkSlotWriting(*slot).ok());
  record = ReadSlotRecord(*slot);
  EXPECT_EQ(record.state, SlotTableState::kWriting);
  EXPECT_TRUE(record.table.has_value());

  testing::WriteFile(tmp() / ".ota-meta/state", "complete");  // no newline: not ours
  EXPECT_EQ(ReadSlotRecord(*slot).state, SlotTableState::kUnreadable);
  testing::WriteFile(tmp() / ".ota-meta/state", "complete\n");
  testing::WriteFile(tmp() / ".ota-meta/slot-table", "OTASLOT1\x01");
  record = ReadSlotRecord(*slot);
  EXPECT_EQ(record.state, SlotTableState::kUnreadable);
  EXPECT_NE(record.problem.find("truncated header"), std::string::npos) << record.problem;
  // A symlink where the table should be is never followed.
  stdfs::remove(tmp() / ".ota-meta/slot-table");
  stdfs::create_symlink("/etc/passwd", tmp() / ".ota-meta/slot-table");
  EXPECT_EQ(ReadSlotRecord(*slot).state, SlotTableState::kUnreadable);
}

// Issue 18: an in-place update that keeps the table records what it wrote in the overlay; the
// record read back is the table with the overlay's entries replacing or adding; a rewrite of the
// table removes the overlay; an overlay that does not parse makes the record unreadable.
TEST_F(SlotRecordTest, TheOverlayOverridesTheTableUntilTheTableIsRewritten) {
  absl::StatusOr<fs::RootedDir> slot = fs::RootedDir::Open(tmp());
  ASSERT_TRUE(slot.ok()) << slot.status();
  ASSERT_TRUE(WriteSlotRecordComplete(*slot, Sample()).ok());
  ASSERT_TRUE(MarkSlotWriting(*slot).ok());
  SlotTable overlay;
  SlotTableEntry replaced = Entry("/etc/passwd", 9);
  replaced.seen.inode = 77;
  overlay.Add(replaced);
  overlay.Add(Entry("/new/file", 8));
  ASSERT_TRUE(MarkSlotComplete(*slot, &overlay).ok());
  EXPECT_EQ(testing::ReadFile(tmp() / ".ota-meta/state"), "complete\n");

  SlotRecord record = ReadSlotRecord(*slot);
  ASSERT_EQ(record.state, SlotTableState::kComplete) << record.problem;
  ASSERT_TRUE(record.table.has_value());
  EXPECT_EQ(record.table->size(), Sample().size() + 1);
  ASSERT_NE(record.table->Find("/etc/passwd"), nullptr);
  EXPECT_EQ(*record.table->Find("/etc/passwd"), replaced);
  ASSERT_NE(record.table->Find("/new/file"), nullptr);
  EXPECT_EQ(*record.table->Find("/many/f7"), Entry("/many/f7", 4));
  EXPECT_EQ(record.overlay.entries(), overlay.entries());
  // Completed again without a new overlay (nothing written): the one there stays.
  ASSERT_TRUE(MarkSlotWriting(*slot).ok());
  ASSERT_TRUE(MarkSlotComplete(*slot, nullptr).ok());
  record = ReadSlotRecord(*slot);
  ASSERT_EQ(record.state, SlotTableState::kComplete) << record.problem;
  EXPECT_EQ(record.overlay.entries(), overlay.entries());
  EXPECT_EQ(*record.table->Find("/etc/passwd"), replaced);

  // A rewritten table stands alone.
  ASSERT_TRUE(WriteSlotRecordComplete(*slot, Sample()).ok());
  EXPECT_FALSE(stdfs::exists(tmp() / ".ota-meta/slot-table-overlay"));
  record = ReadSlotRecord(*slot);
  ASSERT_EQ(record.state, SlotTableState::kComplete);
  EXPECT_EQ(*record.table->Find("/etc/passwd"), Entry("/etc/passwd", 1));
  EXPECT_EQ(record.table->Find("/new/file"), nullptr);
  EXPECT_EQ(record.overlay.size(), 0u);

  testing::WriteFile(tmp() / ".ota-meta/slot-table-overlay", "OTASLOT1\x02");
  record = ReadSlotRecord(*slot);
  EXPECT_EQ(record.state, SlotTableState::kUnreadable);
  EXPECT_NE(record.problem.find("slot-table-overlay"), std::string::npos) << record.problem;
}

TEST(StandbyDecisionTest, Table) {
  using S = StandbyModeSetting;
  using T = SlotTableState;
  struct Case {
    S setting;
    bool fit;
    T table;
    bool in_place;
    bool reverify;
    std::string reason_part;
  };
  const std::vector<Case> cases = {
      {S::kAuto, true, T::kComplete, true, false, "trusted"},
      {S::kAuto, true, T::kWriting, true, true, "interrupted"},
      {S::kAuto, true, T::kMissing, false, false, "no usable slot table"},
      {S::kAuto, true, T::kUnreadable, false, false, "unreadable"},
      {S::kAuto, false, T::kComplete, false, false, "not ext4"},  // not fit beats the table
      {S::kAuto, false, T::kWriting, false, false, "not ext4"},
      {S::kInPlace, true, T::kComplete, true, false, "trusted"},
      {S::kInPlace, true, T::kWriting, true, true, "interrupted"},
      {S::kInPlace, true, T::kMissing, true, true, "forced to in-place"},
      {S::kInPlace, true, T::kUnreadable, true, true, "forced to in-place"},
      {S::kInPlace, false, T::kComplete, false, false, "not ext4"},
      {S::kRebuild, true, T::kComplete, false, false, "forced to rebuild"},
      {S::kRebuild, true, T::kWriting, false, false, "forced to rebuild"},
      {S::kRebuild, false, T::kMissing, false, false, "forced to rebuild"},
  };
  for (const Case& c : cases) {
    StandbyFacts facts;
    facts.filesystem_fit = c.fit;
    facts.filesystem_reason = c.fit ? "" : "not ext4";
    facts.table = c.table;
    const StandbyDecision d = DecideStandbyMode(c.setting, facts);
    const std::string name = std::string(StandbyModeSettingName(c.setting)) + "/" +
                             (c.fit ? "fit" : "unfit") + "/" +
                             std::string(SlotTableStateName(c.table));
    EXPECT_EQ(d.in_place, c.in_place) << name;
    EXPECT_EQ(d.reverify, c.reverify) << name;
    EXPECT_NE(d.reason.find(c.reason_part), std::string::npos) << name << ": " << d.reason;
  }
}

TEST(StandbyDecisionTest, ModeSettingParses) {
  EXPECT_EQ(*ParseStandbyModeSetting("auto"), StandbyModeSetting::kAuto);
  EXPECT_EQ(*ParseStandbyModeSetting("in-place"), StandbyModeSetting::kInPlace);
  EXPECT_EQ(*ParseStandbyModeSetting("rebuild"), StandbyModeSetting::kRebuild);
  for (const char* bad : {"", "Auto", "inplace", "in_place", "rebuild ", "auto\n"}) {
    EXPECT_FALSE(ParseStandbyModeSetting(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace ota::update
