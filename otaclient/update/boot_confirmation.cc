#include "otaclient/update/boot_confirmation.h"

#include <algorithm>
#include <string_view>
#include <utility>
#include <vector>

#include "common/log/log.h"
#include "common/sys/command.h"
#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::update {
namespace {

using Clock = std::chrono::steady_clock;

std::string Trimmed(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.remove_suffix(1);
  }
  while (!text.empty() && (text.front() == '\n' || text.front() == ' ')) text.remove_prefix(1);
  return std::string(text);
}

std::string LastLine(std::string_view text) {
  const std::string trimmed = Trimmed(text);
  const size_t nl = trimmed.rfind('\n');
  return nl == std::string::npos ? trimmed : trimmed.substr(nl + 1);
}

std::string DescribeDuration(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return StrCat(d.count() / 1000, " s");
  return StrCat(d.count(), " ms");
}

// Sleeps `d` in short slices; false when `cancel` was set meanwhile.
bool SleepUnlessCancelled(std::chrono::milliseconds d, const std::atomic<bool>& cancel) {
  const Clock::time_point end = Clock::now() + d;
  while (!cancel.load()) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
    if (left.count() <= 0) return true;
    std::this_thread::sleep_for(std::min(left, std::chrono::milliseconds(100)));
  }
  return false;
}

std::chrono::milliseconds LeftUntil(Clock::time_point deadline) {
  return std::max(std::chrono::milliseconds(0),
                  std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
}

absl::Status WaitForUnit(const HealthCheckOptions& options, Clock::time_point deadline,
                         const std::atomic<bool>& cancel) {
  std::string last_state = "unknown";
  auto timed_out = [&] {
    return absl::DeadlineExceededError(StrCat("unit ", options.systemd_unit, " not active within ",
                                              DescribeDuration(options.timeout),
                                              " (last state: ", last_state, ")"));
  };
  while (true) {
    if (cancel.load()) return absl::CancelledError("health check cancelled: otaclient stops");
    const std::chrono::milliseconds left = LeftUntil(deadline);
    if (left.count() == 0) return timed_out();
    absl::StatusOr<sys::CommandResult> result =
        sys::RunProgram({options.systemctl, "is-active", options.systemd_unit},
                        std::min(left, sys::kQuickToolTimeout));
    if (!result.ok()) {
      // systemctl cut off by the check's own deadline (its limit was the time left): the unit
      // did not make it in time.
      if (result.status().code() == absl::StatusCode::kDeadlineExceeded &&
          left < sys::kQuickToolTimeout) {
        return timed_out();
      }
      return absl::FailedPreconditionError(StrCat(
          "asking systemd about unit ", options.systemd_unit, ": ", result.status().message()));
    }
    last_state = Trimmed(result->out);
    if (last_state.empty()) last_state = StrCat("exit ", result->exit_code);
    if (result->exit_code == 0 && last_state == "active") return absl::OkStatus();
    if (last_state == "failed") {
      return absl::FailedPreconditionError(StrCat("unit ", options.systemd_unit, " failed"));
    }
    log::Debug("health check: unit not active yet",
               {{"unit", options.systemd_unit}, {"state", last_state}});
    if (!SleepUnlessCancelled(std::min(options.poll_interval, LeftUntil(deadline)), cancel)) {
      return absl::CancelledError("health check cancelled: otaclient stops");
    }
  }
}

}  // namespace

absl::Status RunHealthCheck(const HealthCheckOptions& options, const std::atomic<bool>& cancel) {
  const Clock::time_point deadline = Clock::now() + options.timeout;
  if (!options.systemd_unit.empty()) {
    OTA_RETURN_IF_ERROR(WaitForUnit(options, deadline, cancel));
    log::Info("health check: unit active", {{"unit", options.systemd_unit}});
  }
  if (!options.command.empty()) {
    const std::chrono::milliseconds left = LeftUntil(deadline);
    if (left.count() == 0) {
      return absl::DeadlineExceededError(StrCat("command '", options.command,
                                                "' not run: no time left of ",
                                                DescribeDuration(options.timeout)));
    }
    absl::StatusOr<sys::CommandResult> result =
        sys::RunProgram({"/bin/sh", "-c", options.command}, left);
    if (!result.ok()) {
      if (result.status().code() == absl::StatusCode::kDeadlineExceeded) {
        return absl::DeadlineExceededError(StrCat("command '", options.command,
                                                  "' no result within ",
                                                  DescribeDuration(options.timeout)));
      }
      return absl::FailedPreconditionError(
          StrCat("command '", options.command, "': ", result.status().message()));
    }
    for (std::string_view stream : {std::string_view("stdout"), std::string_view("stderr")}) {
      const std::string& text = stream == "stdout" ? result->out : result->err;
      const std::string trimmed = Trimmed(text);
      if (!trimmed.empty()) {
        log::Info("health check output", {{"stream", stream}, {"text", trimmed}});
      }
    }
    if (result->exit_code != 0) {
      const std::string last = LastLine(result->err);
      return absl::FailedPreconditionError(StrCat("command '", options.command, "' exit ",
                                                  result->exit_code, last.empty() ? "" : ": ",
                                                  last));
    }
    log::Info("health check: command passed", {{"command", options.command}});
  }
  return absl::OkStatus();
}

BootConfirmationEngine::BootConfirmationEngine(std::unique_ptr<boot::BootController> boot,
                                               const boot::BootState& pending,
                                               HealthCheckOptions check, bool reboot_on_failure,
                                               EngineFactory factory)
    : boot_(std::move(boot)),
      check_(std::move(check)),
      reboot_on_failure_(reboot_on_failure),
      factory_(std::move(factory)) {
  snapshot_.status = pending.status == boot::SlotStatus::kRollbacking ? OtaStatus::kRollbacking
                                                                      : OtaStatus::kUpdating;
  snapshot_.firmware_version = pending.version;
  snapshot_.release_name = pending.release.release_name;
  snapshot_.release_id = pending.release.release_id;
  snapshot_.image_id = pending.release.image_id;
  snapshot_.progress.phase = UpdatePhase::kFinalizingUpdate;
  snapshot_.progress.update_firmware_version = pending.version;
}

BootConfirmationEngine::~BootConfirmationEngine() {
  RequestStop();
  if (thread_.joinable()) thread_.join();
}

void BootConfirmationEngine::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { Run(); });
}

bool BootConfirmationEngine::checking() const {
  std::lock_guard<std::mutex> lock(mu_);
  return checking_;
}

void BootConfirmationEngine::WaitUntilDone() const {
  std::unique_lock<std::mutex> lock(mu_);
  done_cv_.wait(lock, [this] { return done_; });
}

void BootConfirmationEngine::Run() {
  RunCheck();
  std::lock_guard<std::mutex> lock(mu_);
  done_ = true;
  done_cv_.notify_all();
}

void BootConfirmationEngine::RunCheck() {
  log::Info("health check of the new slot started",
            {{"command", check_.command},
             {"systemd_unit", check_.systemd_unit},
             {"timeout", DescribeDuration(check_.timeout)}});
  const absl::Status healthy = RunHealthCheck(check_, cancel_);
  if (healthy.code() == absl::StatusCode::kCancelled) {
    // Stopping: nothing is decided, the next start checks again.
    log::Info("health check interrupted: the new slot stays unconfirmed");
    return;
  }
  if (healthy.ok()) {
    absl::StatusOr<boot::BootState> confirmed = boot_->CompleteConfirmation();
    std::unique_ptr<UpdateEngine> engine;
    if (confirmed.ok()) {
      log::Info("health check passed: new slot confirmed", {{"version", confirmed->version}});
      engine = factory_(std::move(boot_), *confirmed);
    } else {
      const std::string reason =
          DescribeOtaFailure(OtaStage::kBootStartup, confirmed.status()).reason;
      log::Error("health check passed but the new slot could not be confirmed",
                 {{"error", reason}});
      engine = CreateUnavailableUpdateEngine(reason);
    }
    std::lock_guard<std::mutex> lock(mu_);
    delegate_ = std::move(engine);
    checking_ = false;
    return;
  }
  const std::string reason(healthy.message());
  log::Error("health check failed: going back to the old slot", {{"reason", reason}});
  absl::Status rejected = boot_->RejectNewSlot(reason);
  {
    std::lock_guard<std::mutex> lock(mu_);
    snapshot_.status = snapshot_.status == OtaStatus::kRollbacking ? OtaStatus::kRollbackFailure
                                                                   : OtaStatus::kFailure;
    snapshot_.failure_type = static_cast<int>(FailureKind::kRecoverable);
    snapshot_.failure_reason = StrCat(boot::kHealthCheckFailedPrefix, reason);
    if (!rejected.ok()) {
      StrAppend(&snapshot_.failure_reason, "; recording it failed: ", rejected.message());
    }
    checking_ = false;
  }
  if (!rejected.ok()) {
    log::Error("could not arm the fallback to the old slot",
               {{"error", std::string(rejected.message())}});
    return;
  }
  if (!reboot_on_failure_ || cancel_.load()) {
    log::Warning(
        "not rebooting (reboot disabled or stopping): the next boot returns to the old slot");
    return;
  }
  if (absl::Status rebooted = boot_->Reboot(); !rebooted.ok()) {
    log::Error("reboot into the old slot failed; it boots on the next restart",
               {{"error", std::string(rebooted.message())}});
  }
}

absl::Status BootConfirmationEngine::Refusal() const {
  if (checking_) {
    return absl::FailedPreconditionError(
        "the new slot is being confirmed: its health check is running");
  }
  return absl::FailedPreconditionError(
      StrCat("the new slot failed its health check; the ECU returns to the old slot: ",
             snapshot_.failure_reason));
}

absl::Status BootConfirmationEngine::StartUpdate(const UpdateRequestParams& request) {
  UpdateEngine* delegate = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (delegate_ == nullptr) return Refusal();
    delegate = delegate_.get();
  }
  return delegate->StartUpdate(request);
}

absl::Status BootConfirmationEngine::ClientUpdateAllowed() const {
  UpdateEngine* delegate = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (delegate_ == nullptr) return Refusal();
    delegate = delegate_.get();
  }
  return delegate->ClientUpdateAllowed();
}

StatusSnapshot BootConfirmationEngine::Snapshot() const {
  UpdateEngine* delegate = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (delegate_ == nullptr) return snapshot_;
    delegate = delegate_.get();
  }
  return delegate->Snapshot();
}

absl::StatusOr<std::string> BootConfirmationEngine::Abort() {
  UpdateEngine* delegate = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (delegate_ == nullptr) {
      return absl::FailedPreconditionError("Cannot abort: no active OTA update in progress");
    }
    delegate = delegate_.get();
  }
  return delegate->Abort();
}

absl::Status BootConfirmationEngine::StartRollback() {
  UpdateEngine* delegate = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (delegate_ == nullptr) return Refusal();
    delegate = delegate_.get();
  }
  return delegate->StartRollback();
}

void BootConfirmationEngine::RequestStop() {
  cancel_.store(true);
  UpdateEngine* delegate = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    delegate = delegate_.get();
  }
  if (delegate != nullptr) delegate->RequestStop();
}

}  // namespace ota::update
