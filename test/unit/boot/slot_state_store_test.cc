// SlotStateStore on a real temp directory: round trips, missing files, corrupt status, and that
// writes never leave a half-written file behind (temp files are renamed, not left over).
#include "otaclient/boot/slot_state_store.h"

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "common/fs/fs.h"
#include "gtest/gtest.h"

namespace ota::boot {
namespace {

namespace stdfs = std::filesystem;

class SlotStateStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tmp = fs::TempDir::Create("slot-state-test");
    ASSERT_TRUE(tmp.ok()) << tmp.status();
    tmp_ = std::make_unique<fs::TempDir>(std::move(*tmp));
  }
  stdfs::path Dir() const { return tmp_->path() / "ota-slots" / "slot_a"; }
  std::unique_ptr<fs::TempDir> tmp_;
};

TEST_F(SlotStateStoreTest, MissingDirectoryReadsAsEmpty) {
  SlotStateStore store(Dir());
  auto state = store.Load();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(*state, SlotState{});
}

TEST_F(SlotStateStoreTest, RoundTripsEveryField) {
  SlotStateStore store(Dir());
  ASSERT_TRUE(store.WriteStatus(SlotStatus::kRollbackFailure).ok());
  ASSERT_TRUE(store.WriteVersion("1.2.3 beta").ok());
  ASSERT_TRUE(store.WriteSlotInUse("b").ok());
  ASSERT_TRUE(store.WriteFailureReason("new slot b did not boot").ok());
  auto state = SlotStateStore(Dir()).Load();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->status, SlotStatus::kRollbackFailure);
  EXPECT_EQ(state->version, "1.2.3 beta");
  EXPECT_EQ(state->slot_in_use, "b");
  EXPECT_EQ(state->failure_reason, "new slot b did not boot");
  // Upstream-compatible file contents: the bare name.
  auto raw = fs::ReadFile(Dir() / "status");
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(*raw, "ROLLBACK_FAILURE");
  // No temp files left beside the state files.
  int entries = 0;
  for (const auto& entry : stdfs::directory_iterator(Dir())) {
    (void)entry;
    ++entries;
  }
  EXPECT_EQ(entries, 4);
}

TEST_F(SlotStateStoreTest, EmptyFailureReasonRemovesTheFile) {
  SlotStateStore store(Dir());
  ASSERT_TRUE(store.WriteFailureReason("x").ok());
  ASSERT_TRUE(store.WriteFailureReason("").ok());
  EXPECT_FALSE(stdfs::exists(Dir() / "failure_reason"));
  ASSERT_TRUE(store.WriteFailureReason("").ok());  // already gone: fine
}

TEST_F(SlotStateStoreTest, TrimsNewlinesWrittenByOtherTools) {
  stdfs::create_directories(Dir());
  std::ofstream(Dir() / "status") << "SUCCESS\n";
  std::ofstream(Dir() / "version") << "  v9\r\n";
  auto state = SlotStateStore(Dir()).Load();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->status, SlotStatus::kSuccess);
  EXPECT_EQ(state->version, "v9");
}

TEST_F(SlotStateStoreTest, UnknownStatusIsDataLossNamingTheFile) {
  stdfs::create_directories(Dir());
  std::ofstream(Dir() / "status") << "SUCESS";
  auto state = SlotStateStore(Dir()).Load();
  ASSERT_FALSE(state.ok());
  EXPECT_EQ(state.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(state.status().message().find((Dir() / "status").string()), absl::string_view::npos);
}

TEST_F(SlotStateStoreTest, EmptyStatusFileReadsAsUnmanaged) {
  stdfs::create_directories(Dir());
  std::ofstream(Dir() / "status") << "";
  auto state = SlotStateStore(Dir()).Load();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_FALSE(state->status.has_value());
}

// version_detail is byte-compatible with the Python client's json.dumps (default separators,
// ensure_ascii), both ways.
TEST(VersionDetail, FormatIsPythonJsonDumps) {
  EXPECT_EQ(FormatVersionDetail({"r1", "2024.1", "img-9"}),
            R"({"release_name": "r1", "release_id": "2024.1", "image_id": "img-9"})");
  // Non-ASCII as \uXXXX (surrogate pairs beyond the BMP), quotes and control bytes escaped.
  EXPECT_EQ(FormatVersionDetail({"caf\xc3\xa9 \"x\"", "\xf0\x9f\x9a\x97", "a\tb\\"}),
            R"({"release_name": "caf\u00e9 \"x\"", "release_id": "\ud83d\ude97", )"
            R"("image_id": "a\tb\\"})");
}

TEST(VersionDetail, ParseTable) {
  struct Case {
    std::string text;
    std::optional<ReleaseInfo> expected;
  };
  const Case cases[] = {
      {R"({"release_name": "r1", "release_id": "2024.1", "image_id": "img-9"})",
       ReleaseInfo{"r1", "2024.1", "img-9"}},
      {R"({"release_id":"x"})", ReleaseInfo{"", "x", ""}},  // missing keys read as ""
      {R"({"release_name": 5, "image_id": null, "extra": [1]})", ReleaseInfo{}},
      {R"({"release_name": "caf\u00e9", "release_id": "\ud83d\ude97"})",
       ReleaseInfo{"caf\xc3\xa9", "\xf0\x9f\x9a\x97", ""}},
      {"{\"image_id\": \"x\"}\n", ReleaseInfo{"", "", "x"}},
      {"[]", std::nullopt},
      {"\"r1\"", std::nullopt},
      {"{", std::nullopt},
      {"", std::nullopt},
      {R"({"release_name": "\ud800"})", std::nullopt},  // a lone surrogate: not JSON text
      {std::string("{\"release_name\": \"a\"}\0", 22), std::nullopt},
      {"{} trailing", std::nullopt},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(ParseVersionDetail(c.text), c.expected) << c.text;
  }
}

TEST_F(SlotStateStoreTest, ReleaseRoundTripAndRemoval) {
  SlotStateStore store(Dir());
  ASSERT_TRUE(store.WriteRelease({"r1", "id1", "img1"}).ok());
  auto raw = fs::ReadFile(Dir() / "version_detail");
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(*raw, R"({"release_name": "r1", "release_id": "id1", "image_id": "img1"})");
  auto state = store.Load();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->release, (ReleaseInfo{"r1", "id1", "img1"}));
  // Incomplete (upstream writes only all three): the file goes, so no stale release remains.
  ASSERT_TRUE(store.WriteRelease({"r2", "", "img2"}).ok());
  EXPECT_FALSE(stdfs::exists(Dir() / "version_detail"));
  // A store whose directory does not exist yet: removing is a no-op.
  EXPECT_TRUE(SlotStateStore(tmp_->path() / "nowhere").WriteRelease({}).ok());
  // Garbage written by someone else reads as no release, not as an error.
  std::ofstream(Dir() / "version_detail") << "not json";
  state = store.Load();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->release, ReleaseInfo{});
}

TEST_F(SlotStateStoreTest, LongVersionIsCutLikeUpstream) {
  stdfs::create_directories(Dir());
  std::ofstream(Dir() / "version") << std::string(3000, 'v');
  auto state = SlotStateStore(Dir()).Load();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->version, std::string(2048, 'v'));
}

}  // namespace
}  // namespace ota::boot
