// Health-gated commit: the first start in a freshly switched-to slot confirms it (makes it the
// default) only after a configurable health check passed, like RAUC's `mark-good` from a
// health-checking unit or Mender's ArtifactCommit after its state scripts.
//
// main() asks the boot controller to defer its confirmation (BootController::DeferConfirmation)
// when a check is configured. If ConfirmBoot then reports confirmation_pending, the daemon serves
// through a BootConfirmationEngine, which stands in for the update engine while the check runs
// (started once the gRPC server is up, so a check may ask otaclient itself):
//   checking  Status: UPDATING (ROLLBACKING after a rollback), phase FINALIZING_UPDATE (as upstream
//             between the switch and the end of the update), firmware_version and
//             update_firmware_version the new slot's version; Update, Rollback and Abort are
//             refused (kFailedPrecondition) — nothing may write the old slot, the fallback.
//   passed    boot->CompleteConfirmation() (SUCCESS, the new slot made the default); from then on
//             the real engine (the factory's) serves, starting from that state.
//   failed    boot->RejectNewSlot(reason): FAILURE (ROLLBACK_FAILURE) "health check failed:
//             <reason>" recorded where the old slot reads it, the boot loader armed to fall back;
//             then boot->Reboot() (unless reboot is off). Until the machine goes down Status says
//             FAILURE/RECOVERABLE with the reason and everything (ClientUpdate too) is refused. On
//             the old slot, ConfirmBoot reports that reason.
// A stop (SIGTERM) during the check confirms nothing: the next start checks again.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "otaclient/boot/boot_controller.h"
#include "otaclient/update/update_engine.h"

namespace ota::update {

struct HealthCheckOptions {
  // Run with /bin/sh -c; healthy when it exits 0 (flag --health-check-command).
  std::string command;
  // Healthy when `systemctl is-active <unit>` says "active"; "failed" fails at once; anything else
  // is asked again every poll_interval (flag --health-check-systemd-target).
  std::string systemd_unit;
  std::string systemctl = "systemctl";
  // For the unit and the command together (flag --health-check-timeout, default 300 s).
  std::chrono::milliseconds timeout = std::chrono::minutes(5);
  std::chrono::milliseconds poll_interval = std::chrono::seconds(2);

  bool configured() const { return !command.empty() || !systemd_unit.empty(); }
};

// Runs the configured check (the unit first, then the command). OK: healthy. Otherwise the
// status's message is the reason ("command '/usr/bin/check' exit 3: <its last stderr line>",
// "unit app.target failed", "unit app.target not active within 300 s (last state:
// activating)"); kCancelled when `cancel` was set while waiting for the unit.
absl::Status RunHealthCheck(const HealthCheckOptions& options, const std::atomic<bool>& cancel);

class BootConfirmationEngine final : public UpdateEngine {
 public:
  using EngineFactory = std::function<std::unique_ptr<UpdateEngine>(
      std::unique_ptr<boot::BootController> boot, const boot::BootState& state)>;

  // `pending` is ConfirmBoot's result with confirmation_pending set.
  BootConfirmationEngine(std::unique_ptr<boot::BootController> boot, const boot::BootState& pending,
                         HealthCheckOptions check, bool reboot_on_failure, EngineFactory factory);
  ~BootConfirmationEngine() override;
  BootConfirmationEngine(const BootConfirmationEngine&) = delete;
  BootConfirmationEngine& operator=(const BootConfirmationEngine&) = delete;

  // Starts the check on its own thread (once).
  void Start();
  // Whether the check is still running (no verdict yet).
  bool checking() const;
  // Blocks until the check's thread is done: the verdict given and carried out (the slot
  // confirmed and the engine replaced, or the slot rejected and Reboot() returned), or the
  // check interrupted by a stop (tests).
  void WaitUntilDone() const;

  absl::Status StartUpdate(const UpdateRequestParams& request) override;
  StatusSnapshot Snapshot() const override;
  absl::StatusOr<std::string> Abort() override;
  absl::Status StartRollback() override;
  void RequestStop() override;
  // Refused while the check runs and, after a failed check, until the machine is down (the
  // slot was rejected and the boot loader armed to go back: a new client would only be started
  // to be killed by that reboot, and its own start would see a slot that is going away);
  // afterwards as the real engine says.
  absl::Status ClientUpdateAllowed() const override;

 private:
  void Run();
  void RunCheck();
  absl::Status Refusal() const;  // under mu_

  std::unique_ptr<boot::BootController> boot_;
  const HealthCheckOptions check_;
  const bool reboot_on_failure_;
  EngineFactory factory_;
  std::atomic<bool> cancel_{false};

  mutable std::mutex mu_;
  mutable std::condition_variable done_cv_;
  bool checking_ = true;
  bool done_ = false;
  StatusSnapshot snapshot_;                 // while checking, and after a rejection
  std::unique_ptr<UpdateEngine> delegate_;  // after the check passed
  std::thread thread_;
};

}  // namespace ota::update
