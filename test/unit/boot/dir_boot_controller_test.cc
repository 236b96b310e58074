// DirBootController through whole boot cycles on a real temp root; a "reboot" is a new controller
// instance on the same root, exactly what a re-executed otaclient sees.
#include "otaclient/boot/dir_boot_controller.h"

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "common/fs/fs.h"
#include "gtest/gtest.h"
#include "test/lib/text_files.h"

namespace ota::boot {
namespace {

namespace stdfs = std::filesystem;
using ::ota::testing::ReadText;
using ::ota::testing::WriteText;

class DirBootControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tmp = fs::TempDir::Create("dirboot-test");
    ASSERT_TRUE(tmp.ok()) << tmp.status();
    tmp_ = std::make_unique<fs::TempDir>(std::move(*tmp));
    root_ = tmp_->path();
  }

  // A fresh controller on the same root: what the process sees after a (re)boot.
  std::unique_ptr<DirBootController> Boot() {
    DirBootOptions options;
    options.root = root_;
    options.reboot_hook = [this] {
      ++reboots_;
      return absl::OkStatus();
    };
    auto controller = DirBootController::Create(std::move(options));
    EXPECT_TRUE(controller.ok()) << controller.status();
    return controller.ok() ? std::move(*controller) : nullptr;
  }

  std::string BootFile(const std::string& name) { return ReadText(root_ / "boot" / name); }
  bool HasBootFile(const std::string& name) { return stdfs::exists(root_ / "boot" / name); }

  std::unique_ptr<fs::TempDir> tmp_;
  stdfs::path root_;
  int reboots_ = 0;
};

constexpr std::string_view kKeepResources[] = {"/.ota-resources"};

TEST_F(DirBootControllerTest, FirstStartRunsSlotAInitialized) {
  WriteText(root_ / "boot/slot_a/version", "factory-1.0\n");  // an unmanaged slot's version
  auto boot = Boot();
  auto state = boot->ConfirmBoot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->status, SlotStatus::kInitialized);
  EXPECT_EQ(state->active_slot, "a");
  EXPECT_EQ(state->version, "factory-1.0");
  EXPECT_EQ(boot->ActiveRoot(), root_ / "slot_a");
  EXPECT_EQ(BootFile("default"), "a");
  EXPECT_EQ(BootFile("booted"), "a");
  EXPECT_EQ(BootFile("slot_a/status"), "INITIALIZED");
  EXPECT_TRUE(stdfs::is_directory(root_ / "slot_b"));
}

TEST_F(DirBootControllerTest, FullUpdateCycleConfirmsTheNewSlot) {
  auto boot = Boot();
  ASSERT_TRUE(boot->ConfirmBoot().ok());
  // Leftovers on the standby: an interrupted attempt's resources survive, everything else goes.
  WriteText(root_ / "slot_b/.ota-resources/abc", "resource");
  WriteText(root_ / "slot_b/usr/bin/old", "old");
  stdfs::create_directory_symlink(root_ / "slot_a", root_ / "slot_b/escape");
  WriteText(root_ / "slot_a/etc/keepme", "active data");

  auto standby = boot->PrepareStandby("v2", kKeepResources);
  ASSERT_TRUE(standby.ok()) << standby.status();
  EXPECT_EQ(*standby, root_ / "slot_b");
  EXPECT_EQ(BootFile("slot_b/status"), "UPDATING");
  EXPECT_EQ(BootFile("slot_b/version"), "v2");
  EXPECT_EQ(BootFile("default"), "a");
  EXPECT_FALSE(HasBootFile("next_boot"));
  EXPECT_EQ(ReadText(root_ / "slot_b/.ota-resources/abc"), "resource");
  EXPECT_FALSE(stdfs::exists(root_ / "slot_b/usr"));
  EXPECT_FALSE(stdfs::exists(stdfs::symlink_status(root_ / "slot_b/escape")));
  EXPECT_EQ(ReadText(root_ / "slot_a/etc/keepme"), "active data");

  ASSERT_TRUE(boot->CommitSwitch().ok());
  EXPECT_EQ(BootFile("next_boot"), "b");
  EXPECT_EQ(BootFile("default"), "a");  // UPDATING is never the default
  ASSERT_TRUE(boot->Reboot().ok());
  EXPECT_EQ(reboots_, 1);

  auto rebooted = Boot();
  auto state = rebooted->ConfirmBoot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->status, SlotStatus::kSuccess);
  EXPECT_EQ(state->version, "v2");
  EXPECT_EQ(state->active_slot, "b");
  EXPECT_EQ(rebooted->ActiveRoot(), root_ / "slot_b");
  EXPECT_EQ(BootFile("default"), "b");
  EXPECT_EQ(BootFile("slot_b/status"), "SUCCESS");
  EXPECT_FALSE(HasBootFile("next_boot"));

  // And it stays there on the next boot.
  auto again = Boot();
  state = again->ConfirmBoot();
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->status, SlotStatus::kSuccess);
  EXPECT_EQ(state->active_slot, "b");
  EXPECT_EQ(again->standby_slot(), "a");
}

TEST_F(DirBootControllerTest, UpdateCutOffBeforeTheSwitchIsReportedAsInterrupted) {
  {
    auto boot = Boot();
    ASSERT_TRUE(boot->ConfirmBoot().ok());
    ASSERT_TRUE(boot->PrepareStandby("v2", kKeepResources).ok());
    // Power cut (or otaclient killed) while the standby is written: no CommitSwitch.
  }
  auto restarted = Boot();
  auto state = restarted->ConfirmBoot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->status, SlotStatus::kFailure);
  EXPECT_EQ(state->failure_reason,
            "update of slot b was interrupted before the boot switch (otaclient or the machine "
            "restarted); running a");
  EXPECT_EQ(state->active_slot, "a");
  EXPECT_EQ(BootFile("slot_b/status"), "FAILURE");
  // A new update clears the record of the earlier switch, so its cut-off reads the same way.
  ASSERT_TRUE(restarted->PrepareStandby("v3", kKeepResources).ok());
  ASSERT_TRUE(restarted->CommitSwitch().ok());
  EXPECT_TRUE(HasBootFile("slot_b/switch_committed"));
  ASSERT_TRUE(restarted->PrepareStandby("v4", kKeepResources).ok());
  EXPECT_FALSE(HasBootFile("slot_b/switch_committed"));
}

TEST_F(DirBootControllerTest, ResetBeforeConfirmFallsBackAndReportsFailure) {
  auto boot = Boot();
  ASSERT_TRUE(boot->ConfirmBoot().ok());
  ASSERT_TRUE(boot->PrepareStandby("v2", kKeepResources).ok());
  ASSERT_TRUE(boot->CommitSwitch().ok());
  // The boot loader consumed the one-shot, the new slot never confirmed, the machine reset.
  stdfs::remove(root_ / "boot/next_boot");

  auto fallback = Boot();
  auto state = fallback->ConfirmBoot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->status, SlotStatus::kFailure);
  EXPECT_EQ(state->failure_reason, "new slot b did not boot; running a");
  EXPECT_EQ(state->active_slot, "a");
  EXPECT_EQ(BootFile("slot_b/status"), "FAILURE");
  EXPECT_EQ(BootFile("default"), "a");

  // The failure stays visible across further restarts, until the next update.
  auto later = Boot();
  state = later->ConfirmBoot();
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->status, SlotStatus::kFailure);
  EXPECT_EQ(state->failure_reason, "new slot b did not boot; running a");
  ASSERT_TRUE(later->PrepareStandby("v3", kKeepResources).ok());
  EXPECT_EQ(BootFile("slot_b/status"), "UPDATING");
  EXPECT_FALSE(HasBootFile("slot_b/failure_reason"));
}

TEST_F(DirBootControllerTest, CrashBeforeCommitMarksStandbyFailed) {
  auto boot = Boot();
  ASSERT_TRUE(boot->ConfirmBoot().ok());
  ASSERT_TRUE(boot->PrepareStandby("v2", kKeepResources).ok());
  auto restarted = Boot();  // no CommitSwitch: the process died mid-update
  auto state = restarted->ConfirmBoot();
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->status, SlotStatus::kFailure);
  EXPECT_EQ(state->active_slot, "a");
  EXPECT_EQ(BootFile("slot_b/status"), "FAILURE");
}

TEST_F(DirBootControllerTest, OnUpdateFailedKeepsStandbyUnbootable) {
  auto boot = Boot();
  ASSERT_TRUE(boot->ConfirmBoot().ok());
  EXPECT_EQ(boot->OnUpdateFailed(SlotStatus::kFailure).code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(boot->PrepareStandby("v2", kKeepResources).ok());
  ASSERT_TRUE(boot->CommitSwitch().ok());
  ASSERT_TRUE(boot->OnUpdateFailed(SlotStatus::kAborted).ok());
  EXPECT_FALSE(HasBootFile("next_boot"));
  EXPECT_EQ(BootFile("slot_b/status"), "ABORTED");
  EXPECT_EQ(BootFile("default"), "a");
  auto state = Boot()->ConfirmBoot();
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->active_slot, "a");
  EXPECT_EQ(state->status, SlotStatus::kAborted);
  EXPECT_FALSE(state->failure_reason.empty());
}

TEST_F(DirBootControllerTest, ConfirmBootIsIdempotentWithinOneBoot) {
  auto boot = Boot();
  ASSERT_TRUE(boot->ConfirmBoot().ok());
  ASSERT_TRUE(boot->PrepareStandby("v2", kKeepResources).ok());
  ASSERT_TRUE(boot->CommitSwitch().ok());
  auto next = Boot();
  auto first = next->ConfirmBoot();
  auto second = next->ConfirmBoot();
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(first->active_slot, "b");
  EXPECT_EQ(second->active_slot, "b");
  EXPECT_EQ(second->status, SlotStatus::kSuccess);
}

TEST_F(DirBootControllerTest, PrepareBeforeConfirmIsRefused) {
  auto boot = Boot();
  EXPECT_EQ(boot->PrepareStandby("v2", kKeepResources).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(boot->CommitSwitch().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(DirBootControllerTest, CorruptBootStateIsAnErrorNamingTheFile) {
  WriteText(root_ / "boot/default", "c");
  auto boot = Boot();
  auto state = boot->ConfirmBoot();
  EXPECT_EQ(state.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(state.status().message().find("boot/default"), std::string::npos);
}

// Status files are read as the Python client reads them: any case, and a name it does not know
// is no status (INITIALIZED, written back), never an error that stops otaclient.
TEST_F(DirBootControllerTest, StatusNamesAreReadAsUpstreamReadsThem) {
  WriteText(root_ / "boot/default", "a\n");
  WriteText(root_ / "boot/slot_a/status", "success\n");
  auto state = Boot()->ConfirmBoot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->status, SlotStatus::kSuccess);

  WriteText(root_ / "boot/slot_a/status", "HAPPY");
  state = Boot()->ConfirmBoot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->status, SlotStatus::kInitialized);
  EXPECT_EQ(BootFile("slot_a/status"), "INITIALIZED");
}

// The release of an update is kept with its slot in the Python client's version_detail format
// and reported once that slot runs; an incomplete one leaves no file (none stale either).
TEST_F(DirBootControllerTest, ReleaseIsRecordedWithTheStandbyAndReportedOnceItRuns) {
  auto boot = Boot();
  ASSERT_TRUE(boot->ConfirmBoot().ok());
  boot->SetStandbyRelease({"rel-1", "2024.1", "img-1"});
  ASSERT_TRUE(boot->PrepareStandby("v2", kKeepResources).ok());
  EXPECT_EQ(BootFile("slot_b/version_detail"),
            R"({"release_name": "rel-1", "release_id": "2024.1", "image_id": "img-1"})");
  ASSERT_TRUE(boot->CommitSwitch().ok());
  auto next = Boot();
  auto state = next->ConfirmBoot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->active_slot, "b");
  EXPECT_EQ(state->release, (ReleaseInfo{"rel-1", "2024.1", "img-1"}));

  // The next update of slot a carries no image_id: no version_detail there.
  WriteText(root_ / "boot/slot_a/version_detail", R"({"release_name": "stale"})");
  next->SetStandbyRelease({"rel-2", "2024.2", ""});
  ASSERT_TRUE(next->PrepareStandby("v3", kKeepResources).ok());
  EXPECT_FALSE(HasBootFile("slot_a/version_detail"));
}

// What the Python client leaves on a machine after an update from slot a to slot b: slot b
// SUCCESS with its version and release, slot a FAILURE (its pre-update mark of the slot it
// left), slot_in_use "b" in both, no boot/default of ours. Taken over as it is: slot b runs,
// SUCCESS, with its version and release; slot a's mark is not reported.
TEST_F(DirBootControllerTest, TakesOverTheStateThePythonClientLeft) {
  WriteText(root_ / "boot/slot_b/status", "SUCCESS");
  WriteText(root_ / "boot/slot_b/version", "2.1.0");
  WriteText(root_ / "boot/slot_b/slot_in_use", "b");
  WriteText(root_ / "boot/slot_b/version_detail",
            R"({"release_name": "r-2.1", "release_id": "id-21", "image_id": "img-21"})");
  WriteText(root_ / "boot/slot_a/status", "FAILURE");
  WriteText(root_ / "boot/slot_a/version", "2.0.0");
  WriteText(root_ / "boot/slot_a/slot_in_use", "b");
  auto boot = Boot();
  auto state = boot->ConfirmBoot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->active_slot, "b");
  EXPECT_EQ(state->status, SlotStatus::kSuccess);
  EXPECT_EQ(state->version, "2.1.0");
  EXPECT_EQ(state->release, (ReleaseInfo{"r-2.1", "id-21", "img-21"}));
  EXPECT_EQ(state->failure_reason, "");
  EXPECT_EQ(BootFile("default"), "b");
  EXPECT_EQ(boot->ActiveRoot(), root_ / "slot_b");
}

// The Python client marks the running slot FAILURE when an update from it fails: reported.
TEST_F(DirBootControllerTest, PythonFailureMarkOnTheRunningSlotIsReported) {
  WriteText(root_ / "boot/slot_a/status", "FAILURE");
  WriteText(root_ / "boot/slot_a/version", "2.0.0");
  auto state = Boot()->ConfirmBoot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->status, SlotStatus::kFailure);
  EXPECT_EQ(state->version, "2.0.0");
  EXPECT_NE(state->failure_reason.find("slot_a/status"), std::string::npos)
      << state->failure_reason;
}

TEST_F(DirBootControllerTest, SlotStatusNamesRoundTrip) {
  for (SlotStatus s :
       {SlotStatus::kInitialized, SlotStatus::kUpdating, SlotStatus::kSuccess, SlotStatus::kFailure,
        SlotStatus::kRollbacking, SlotStatus::kRollbackFailure, SlotStatus::kAborted}) {
    auto parsed = ParseSlotStatus(SlotStatusName(s));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, s);
  }
  EXPECT_EQ(SlotStatusName(SlotStatus::kRollbackFailure), "ROLLBACK_FAILURE");
  EXPECT_EQ(*ParseSlotStatus("SUCCESS\n"), SlotStatus::kSuccess);
  EXPECT_FALSE(ParseSlotStatus("success").ok());
  EXPECT_FALSE(ParseSlotStatus("").ok());
}

TEST(DirBootReboot, ReexecRunsTheBinaryAgainWithTheSavedArgv) {
  auto tmp = fs::TempDir::Create("dirboot-reexec");
  ASSERT_TRUE(tmp.ok());
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    DirBootOptions options;
    options.root = tmp->path();
    // The re-executed test binary runs no test and exits 0; returning from Reboot gives 42.
    options.reexec_argv = {"dir_boot_controller_test", "--gtest_filter=-*"};
    auto boot = DirBootController::Create(std::move(options));
    if (boot.ok()) (void)(*boot)->Reboot();
    ::_exit(42);
  }
  int wstatus = 0;
  ASSERT_EQ(::waitpid(pid, &wstatus, 0), pid);
  ASSERT_TRUE(WIFEXITED(wstatus));
  EXPECT_EQ(WEXITSTATUS(wstatus), 0);

  DirBootOptions no_argv;
  no_argv.root = tmp->path();
  auto boot = DirBootController::Create(std::move(no_argv));
  ASSERT_TRUE(boot.ok());
  EXPECT_EQ((*boot)->Reboot().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace ota::boot
