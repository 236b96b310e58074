// Rollback and abort on the directory boot backend, through whole boot cycles on a real temp root
// (a "reboot" is a new controller on the same root, what a re-executed otaclient sees). Lives
// with the engine tests because the engine's StartRollback()/Abort() drive exactly these calls.
#include <filesystem>
#include <memory>
#include <string>

#include "common/fs/fs.h"
#include "gtest/gtest.h"
#include "otaclient/boot/dir_boot_controller.h"
#include "test/unit/update/tree_util.h"

namespace ota::boot {
namespace {

namespace stdfs = std::filesystem;
using ::ota::update::testing::ReadFile;
using ::ota::update::testing::WriteFile;

constexpr std::string_view kKeepResources[] = {"/.ota-resources"};

class DirBootRollbackTest : public ::ota::update::testing::TempDirTest {
 protected:
  std::unique_ptr<DirBootController> Boot() {
    DirBootOptions options;
    options.root = tmp();
    options.reboot_hook = [] { return absl::OkStatus(); };
    auto controller = DirBootController::Create(std::move(options));
    EXPECT_TRUE(controller.ok()) << controller.status();
    if (!controller.ok()) return nullptr;
    auto state = (*controller)->ConfirmBoot();
    EXPECT_TRUE(state.ok()) << state.status();
    if (state.ok()) last_state_ = *state;
    return std::move(*controller);
  }

  // From a fresh system on slot a (v1), an update of slot b to v2, booted and confirmed.
  std::unique_ptr<DirBootController> UpdatedToV2() {
    WriteFile(tmp() / "slot_a/etc/os-release", "v1\n");
    WriteFile(tmp() / "boot/slot_a/version", "v1");
    auto boot = Boot();
    EXPECT_EQ(last_state_.status, SlotStatus::kInitialized);
    auto standby = boot->PrepareStandby("v2", kKeepResources);
    EXPECT_TRUE(standby.ok()) << standby.status();
    WriteFile(*standby / "etc/os-release", "v2\n");
    EXPECT_TRUE(boot->CommitSwitch().ok());
    boot = Boot();
    EXPECT_EQ(last_state_.status, SlotStatus::kSuccess);
    EXPECT_EQ(last_state_.active_slot, "b");
    return boot;
  }

  std::string BootFile(const std::string& name) { return ReadFile(tmp() / "boot" / name); }

  BootState last_state_;
};

TEST_F(DirBootRollbackTest, NotPossibleOnAFreshSystem) {
  auto boot = Boot();
  absl::Status st = boot->CheckRollbackPossible();
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(st.message(),
            "rollback not possible: slot b has status (none), a previous good image needs SUCCESS");
  EXPECT_EQ(boot->CommitRollback().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(stdfs::exists(tmp() / "boot/next_boot"));
}

TEST_F(DirBootRollbackTest, RollbackBootsThePreviousSlotAndConfirmsIt) {
  auto boot = UpdatedToV2();
  EXPECT_EQ(BootFile("slot_a/status"), "SUCCESS");  // promoted: it ran until the update
  ASSERT_TRUE(boot->CheckRollbackPossible().ok());
  ASSERT_TRUE(boot->CommitRollback().ok());
  EXPECT_EQ(BootFile("slot_a/status"), "ROLLBACKING");
  EXPECT_EQ(BootFile("next_boot"), "a");
  EXPECT_EQ(BootFile("default"), "b");  // until slot a confirms
  // Committed: no second rollback, no update on top of it in this boot.
  EXPECT_EQ(boot->CheckRollbackPossible().code(), absl::StatusCode::kFailedPrecondition);

  boot = Boot();
  EXPECT_EQ(last_state_.status, SlotStatus::kSuccess);
  EXPECT_EQ(last_state_.active_slot, "a");
  EXPECT_EQ(last_state_.version, "v1");
  EXPECT_EQ(BootFile("default"), "a");
  EXPECT_EQ(BootFile("slot_a/status"), "SUCCESS");
  EXPECT_EQ(ReadFile(boot->ActiveRoot() / "etc/os-release"), "v1\n");
  // Slot b still holds v2 and is SUCCESS: rolling "back" to it again is possible.
  EXPECT_TRUE(boot->CheckRollbackPossible().ok());
}

TEST_F(DirBootRollbackTest, FallbackFromARollbackIsRollbackFailure) {
  auto boot = UpdatedToV2();
  ASSERT_TRUE(boot->CommitRollback().ok());
  // The boot loader consumed the one-shot, slot a never confirmed, the machine came back on b.
  stdfs::remove(tmp() / "boot/next_boot");
  boot = Boot();
  EXPECT_EQ(last_state_.status, SlotStatus::kRollbackFailure);
  EXPECT_EQ(last_state_.active_slot, "b");
  EXPECT_EQ(last_state_.failure_reason, "rollback to slot a did not boot; running b");
  EXPECT_EQ(BootFile("slot_a/status"), "ROLLBACK_FAILURE");
  EXPECT_EQ(BootFile("default"), "b");
  EXPECT_EQ(boot->CheckRollbackPossible().code(), absl::StatusCode::kFailedPrecondition);
  // It stays reported on the next boot too, and a new update is possible.
  boot = Boot();
  EXPECT_EQ(last_state_.status, SlotStatus::kRollbackFailure);
  EXPECT_TRUE(boot->PrepareStandby("v3", kKeepResources).ok());
}

TEST_F(DirBootRollbackTest, AbortedUpdateLeavesTheStandbyUnbootableAndNoRollbackTarget) {
  auto boot = UpdatedToV2();
  ASSERT_TRUE(boot->PrepareStandby("v3", kKeepResources).ok());
  EXPECT_EQ(boot->CheckRollbackPossible().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(boot->OnUpdateFailed(SlotStatus::kAborted).ok());
  EXPECT_EQ(BootFile("slot_a/status"), "ABORTED");
  EXPECT_FALSE(stdfs::exists(tmp() / "boot/next_boot"));
  absl::Status st = boot->CheckRollbackPossible();
  EXPECT_EQ(
      st.message(),
      "rollback not possible: slot a has status ABORTED, a previous good image needs SUCCESS");
  boot = Boot();
  EXPECT_EQ(last_state_.status, SlotStatus::kAborted);
  EXPECT_EQ(last_state_.active_slot, "b");
}

TEST_F(DirBootRollbackTest, EmptyPreviousSlotIsNoRollbackTarget) {
  auto boot = UpdatedToV2();
  stdfs::remove_all(tmp() / "slot_a");
  stdfs::create_directory(tmp() / "slot_a");
  absl::Status st = boot->CheckRollbackPossible();
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("is empty"), std::string::npos) << st;
}

}  // namespace
}  // namespace ota::boot
