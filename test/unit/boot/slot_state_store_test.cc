// SlotStateStore on a real temp directory: round trips, missing files, corrupt status, and that
// writes never leave a half-written file behind (temp files are renamed, not left over).
#include "otaclient/boot/slot_state_store.h"

#include <filesystem>
#include <fstream>

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

}  // namespace
}  // namespace ota::boot
