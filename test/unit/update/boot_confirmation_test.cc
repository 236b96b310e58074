// Health-gated commit on the directory boot backend, through whole boot cycles on a real temp
// root (a "reboot" is a new controller on the same root), with real check commands and a fake
// systemctl (a script: systemd itself cannot run here). The check is held open through a fifo,
// never by time.
#include "otaclient/update/boot_confirmation.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>

#include "common/util/strings.h"
#include "gtest/gtest.h"
#include "otaclient/boot/dir_boot_controller.h"
#include "test/unit/update/tree_util.h"

namespace ota::update {
namespace {

namespace stdfs = std::filesystem;
using testing::ReadFile;
using testing::WriteFile;

constexpr std::string_view kKeepResources[] = {"/.ota-resources"};

class BootConfirmationTest : public testing::TempDirTest {
 protected:
  std::unique_ptr<boot::DirBootController> Controller() {
    boot::DirBootOptions options;
    options.root = tmp() / "root";
    options.reboot_hook = [this] {
      reboots_.fetch_add(1);
      return absl::OkStatus();
    };
    auto controller = boot::DirBootController::Create(std::move(options));
    EXPECT_TRUE(controller.ok()) << controller.status();
    return controller.ok() ? std::move(*controller) : nullptr;
  }

  // Slot a runs v1; slot b was written with v2 and switched to; the machine "rebooted" into b.
  // Returns the controller of that first start, its confirmation deferred, and its state.
  std::unique_ptr<boot::DirBootController> BootedIntoV2(boot::BootState* state) {
    WriteFile(tmp() / "root/slot_a/etc/os-release", "v1\n");
    WriteFile(tmp() / "root/boot/slot_a/version", "v1");
    auto old = Controller();
    EXPECT_TRUE(old->ConfirmBoot().ok());
    auto standby = old->PrepareStandby("v2", kKeepResources);
    EXPECT_TRUE(standby.ok()) << standby.status();
    WriteFile(*standby / "etc/os-release", "v2\n");
    EXPECT_TRUE(old->CommitSwitch().ok());
    old.reset();
    auto fresh = Controller();
    fresh->DeferConfirmation();
    auto confirmed = fresh->ConfirmBoot();
    EXPECT_TRUE(confirmed.ok()) << confirmed.status();
    if (confirmed.ok()) *state = *confirmed;
    return fresh;
  }

  std::unique_ptr<BootConfirmationEngine> Gate(std::unique_ptr<boot::BootController> boot,
                                               const boot::BootState& state,
                                               HealthCheckOptions check) {
    return std::make_unique<BootConfirmationEngine>(
        std::move(boot), state, std::move(check), /*reboot_on_failure=*/true,
        [this](std::unique_ptr<boot::BootController> confirmed, const boot::BootState& s) {
          factory_state_ = s;
          return CreateUpdateEngine(EngineOptions{}, std::move(confirmed), s, nullptr);
        });
  }

  // The first start after the update to v2 (BootedIntoV2), gated by `check`, run to its verdict.
  std::unique_ptr<BootConfirmationEngine> CheckedToTheEnd(HealthCheckOptions check) {
    boot::BootState state;
    auto boot = BootedIntoV2(&state);
    auto engine = Gate(std::move(boot), state, std::move(check));
    engine->Start();
    engine->WaitUntilDone();
    return engine;
  }

  // A check waiting for app.target through FakeSystemctl(answers), polled every `poll`.
  HealthCheckOptions SystemdCheck(const std::string& answers, std::chrono::milliseconds poll) {
    HealthCheckOptions check;
    check.systemd_unit = "app.target";
    check.systemctl = FakeSystemctl(answers).string();
    check.poll_interval = poll;
    return check;
  }

  // After a rejection: the "reboot" lands on slot a, which reports the health check's reason.
  void ExpectBackOnTheOldSlotWith(const std::string& reason) {
    EXPECT_EQ(BootFile("default"), "a");
    EXPECT_FALSE(stdfs::exists(tmp() / "root/boot/next_boot"));
    auto back = Controller();
    auto state = back->ConfirmBoot();
    ASSERT_TRUE(state.ok()) << state.status();
    EXPECT_EQ(state->active_slot, "a");
    EXPECT_EQ(state->version, "v1");
    EXPECT_EQ(state->status, boot::SlotStatus::kFailure);
    EXPECT_EQ(state->failure_reason, reason);
    // The engine there reports it as a recoverable failure (a new update may be tried).
    auto engine = CreateUpdateEngine(EngineOptions{}, std::move(back), *state, nullptr);
    const StatusSnapshot s = engine->Snapshot();
    EXPECT_EQ(s.status, OtaStatus::kFailure);
    EXPECT_EQ(s.failure_type, 1);
    EXPECT_EQ(s.failure_reason, reason);
  }

  std::string BootFile(const std::string& name) { return ReadFile(tmp() / "root/boot" / name); }

  // A fake systemctl answering `is-active` with the lines of `answers` in turn (the last one
  // repeats), counting its calls in <tmp>/systemctl-calls.
  stdfs::path FakeSystemctl(const std::string& answers) {
    const stdfs::path script = tmp() / "systemctl";
    WriteFile(tmp() / "answers", answers);
    WriteFile(script,
              StrCat("#!/bin/bash\n", "[ \"$1\" = is-active ] || exit 64\n", "n=$(cat ",
                     (tmp() / "systemctl-calls").string(), " 2>/dev/null || echo 0)\n",
                     "n=$((n + 1)); echo $n > ", (tmp() / "systemctl-calls").string(), "\n",
                     "line=$(sed -n \"${n}p\" ", (tmp() / "answers").string(),
                     "); [ -n \"$line\" ] || line=$(tail -n 1 ", (tmp() / "answers").string(),
                     ")\n", "echo \"$line\"\n", "[ \"$line\" = active ]\n"),
              0755);
    return script;
  }

  std::atomic<int> reboots_{0};
  boot::BootState factory_state_;
};

TEST_F(BootConfirmationTest, WithoutDeferralTheFirstStartConfirmsAtOnce) {
  WriteFile(tmp() / "root/boot/slot_a/version", "v1");
  auto old = Controller();
  ASSERT_TRUE(old->ConfirmBoot().ok());
  ASSERT_TRUE(old->PrepareStandby("v2", kKeepResources).ok());
  ASSERT_TRUE(old->CommitSwitch().ok());
  auto fresh = Controller();
  auto state = fresh->ConfirmBoot();
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->status, boot::SlotStatus::kSuccess);
  EXPECT_FALSE(state->confirmation_pending);
  EXPECT_EQ(BootFile("default"), "b");
}

TEST_F(BootConfirmationTest, StatusAnswersDuringTheCheckAndAPassConfirmsTheNewSlot) {
  boot::BootState state;
  auto boot = BootedIntoV2(&state);
  ASSERT_TRUE(state.confirmation_pending);
  EXPECT_EQ(state.status, boot::SlotStatus::kUpdating);
  EXPECT_EQ(state.active_slot, "b");
  // Nothing is made the default before the check passed.
  EXPECT_EQ(BootFile("default"), "a");
  EXPECT_EQ(BootFile("slot_b/status"), "UPDATING");

  const stdfs::path gate = tmp() / "gate";
  ASSERT_EQ(::mkfifo(gate.c_str(), 0600), 0);
  HealthCheckOptions check;
  check.command = StrCat("read answer < ", gate.string(), "; [ \"$answer\" = healthy ]");
  auto engine = Gate(std::move(boot), state, check);
  engine->Start();

  // The command waits on the fifo: the verdict cannot have come yet.
  EXPECT_TRUE(engine->checking());
  StatusSnapshot during = engine->Snapshot();
  EXPECT_EQ(during.status, OtaStatus::kUpdating);
  EXPECT_EQ(during.progress.phase, UpdatePhase::kFinalizingUpdate);
  EXPECT_EQ(during.firmware_version, "v2");
  EXPECT_EQ(during.progress.update_firmware_version, "v2");
  UpdateRequestParams request;
  request.version = "v3";
  request.url = "http://127.0.0.1:9/";
  absl::Status refused = engine->StartUpdate(request);
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(refused.message(), "the new slot is being confirmed: its health check is running");
  EXPECT_EQ(engine->StartRollback().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(engine->Abort().status().message(), "Cannot abort: no active OTA update in progress");

  WriteFile(gate, "healthy\n");  // opens the fifo: blocks until the command reads it
  engine->WaitUntilDone();
  EXPECT_FALSE(engine->checking());
  EXPECT_EQ(factory_state_.status, boot::SlotStatus::kSuccess);
  EXPECT_FALSE(factory_state_.confirmation_pending);
  const StatusSnapshot after = engine->Snapshot();
  EXPECT_EQ(after.status, OtaStatus::kSuccess);
  EXPECT_EQ(after.firmware_version, "v2");
  EXPECT_EQ(BootFile("default"), "b");
  EXPECT_EQ(BootFile("slot_b/status"), "SUCCESS");
  EXPECT_EQ(reboots_.load(), 0);
}

TEST_F(BootConfirmationTest, AFailingCommandSendsTheEcuBackToTheOldSlot) {
  HealthCheckOptions check;
  check.command = "echo starting; echo 'app did not start' >&2; exit 4";
  auto engine = CheckedToTheEnd(check);
  const std::string reason =
      StrCat("health check failed: command '", check.command, "' exit 4: app did not start");
  const StatusSnapshot s = engine->Snapshot();
  EXPECT_EQ(s.status, OtaStatus::kFailure);
  EXPECT_EQ(s.failure_type, 1);
  EXPECT_EQ(s.failure_reason, reason);
  absl::Status refused = engine->StartUpdate(UpdateRequestParams{});
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  engine.reset();  // joins the check thread, which rebooted
  EXPECT_EQ(reboots_.load(), 1);
  EXPECT_EQ(BootFile("slot_b/status"), "FAILURE");
  ExpectBackOnTheOldSlotWith(reason);
}

TEST_F(BootConfirmationTest, ACheckThatHangsFailsAtItsTimeout) {
  HealthCheckOptions check;
  check.command = "exec sleep 600";
  check.timeout = std::chrono::milliseconds(300);
  auto engine = CheckedToTheEnd(check);
  engine.reset();
  EXPECT_EQ(reboots_.load(), 1);
  ExpectBackOnTheOldSlotWith(
      "health check failed: command 'exec sleep 600' no result within 300 ms");
}

TEST_F(BootConfirmationTest, ASystemdTargetThatBecomesActivePasses) {
  auto engine = CheckedToTheEnd(
      SystemdCheck("activating\nactivating\nactive\n", std::chrono::milliseconds(1)));
  EXPECT_EQ(engine->Snapshot().status, OtaStatus::kSuccess);
  EXPECT_EQ(ReadFile(tmp() / "systemctl-calls"), "3\n");
  EXPECT_EQ(BootFile("default"), "b");
  EXPECT_EQ(reboots_.load(), 0);
}

TEST_F(BootConfirmationTest, AFailedSystemdTargetFailsAtOnce) {
  HealthCheckOptions check = SystemdCheck("activating\nfailed\n", std::chrono::milliseconds(1));
  // A command configured too never runs when the unit failed.
  check.command = StrCat("touch ", (tmp() / "command-ran").string());
  auto engine = CheckedToTheEnd(check);
  engine.reset();
  EXPECT_EQ(ReadFile(tmp() / "systemctl-calls"), "2\n");
  EXPECT_FALSE(stdfs::exists(tmp() / "command-ran"));
  ExpectBackOnTheOldSlotWith("health check failed: unit app.target failed");
}

TEST_F(BootConfirmationTest, ASystemdTargetThatNeverComesUpTimesOut) {
  HealthCheckOptions check = SystemdCheck("activating\n", std::chrono::milliseconds(20));
  check.timeout = std::chrono::milliseconds(300);
  auto engine = CheckedToTheEnd(check);
  engine.reset();
  ExpectBackOnTheOldSlotWith(
      "health check failed: unit app.target not active within 300 ms (last state: activating)");
}

// A rollback's first boot is gated the same way: ROLLBACKING while checked, ROLLBACK_FAILURE with
// the reason back on the slot it came from.
TEST_F(BootConfirmationTest, ARollbackIsGatedTooAndItsFailureIsARollbackFailure) {
  boot::BootState state;
  auto updated = BootedIntoV2(&state);
  ASSERT_TRUE(updated->CompleteConfirmation().ok());  // running v2 on b, confirmed
  ASSERT_TRUE(updated->CheckRollbackPossible().ok());
  ASSERT_TRUE(updated->CommitRollback().ok());
  updated.reset();
  auto rolled = Controller();
  rolled->DeferConfirmation();
  auto pending = rolled->ConfirmBoot();
  ASSERT_TRUE(pending.ok()) << pending.status();
  EXPECT_EQ(pending->active_slot, "a");
  EXPECT_EQ(pending->status, boot::SlotStatus::kRollbacking);
  EXPECT_TRUE(pending->confirmation_pending);
  HealthCheckOptions check;
  check.command = "exit 1";
  auto engine = Gate(std::move(rolled), *pending, check);
  EXPECT_EQ(engine->Snapshot().status, OtaStatus::kRollbacking);
  EXPECT_EQ(engine->Snapshot().progress.phase, UpdatePhase::kFinalizingUpdate);
  engine->Start();
  engine->WaitUntilDone();
  EXPECT_EQ(engine->Snapshot().status, OtaStatus::kRollbackFailure);
  engine.reset();
  EXPECT_EQ(reboots_.load(), 1);
  auto back = Controller();
  auto after = back->ConfirmBoot();
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->active_slot, "b");
  EXPECT_EQ(after->status, boot::SlotStatus::kRollbackFailure);
  EXPECT_EQ(after->failure_reason, "health check failed: command 'exit 1' exit 1");
}

TEST_F(BootConfirmationTest, AStopDuringTheCheckDecidesNothing) {
  boot::BootState state;
  auto boot = BootedIntoV2(&state);
  auto engine =
      Gate(std::move(boot), state, SystemdCheck("activating\n", std::chrono::milliseconds(10)));
  engine->Start();
  engine->RequestStop();
  engine.reset();  // joins: the wait for the unit ends on the stop
  EXPECT_EQ(reboots_.load(), 0);
  EXPECT_EQ(BootFile("default"), "a");
  EXPECT_EQ(BootFile("slot_b/status"), "UPDATING");
  EXPECT_FALSE(stdfs::exists(tmp() / "root/boot/slot_b/failure_reason"));
}

}  // namespace
}  // namespace ota::update
