// UpdateEngine: owns the boot controller, runs one UpdateSession at a time on a worker thread,
// keeps the state machine's current phase and the status snapshot.
#include "otaclient/update/update_engine.h"

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <ctime>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "common/http/fetcher.h"
#include "common/log/log.h"
#include "common/util/errors.h"
#include "common/util/memory.h"
#include "common/util/strings.h"
#include "otaclient/update/background_priority.h"
#include "otaclient/update/progress.h"
#include "otaclient/update/update_session.h"

namespace ota::update {
namespace {

using Clock = std::chrono::steady_clock;

uint64_t MillisBetween(Clock::time_point from, Clock::time_point to) {
  if (to <= from) return 0;
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(to - from).count());
}

OtaStatus FromSlotStatus(boot::SlotStatus status) {
  switch (status) {
    case boot::SlotStatus::kInitialized:
      return OtaStatus::kInitialized;
    case boot::SlotStatus::kUpdating:
      return OtaStatus::kUpdating;
    case boot::SlotStatus::kSuccess:
      return OtaStatus::kSuccess;
    case boot::SlotStatus::kFailure:
      return OtaStatus::kFailure;
    case boot::SlotStatus::kRollbacking:
      return OtaStatus::kRollbacking;
    case boot::SlotStatus::kRollbackFailure:
      return OtaStatus::kRollbackFailure;
    case boot::SlotStatus::kAborted:
      return OtaStatus::kAborted;
  }
  return OtaStatus::kInitialized;
}

absl::Status ValidateUrl(std::string_view url) {
  std::string_view rest;
  if (url.substr(0, 7) == "http://") {
    rest = url.substr(7);
  } else if (url.substr(0, 8) == "https://") {
    rest = url.substr(8);
  } else {
    return absl::InvalidArgumentError(
        StrCat("url '", url, "': scheme must be http:// or https://"));
  }
  if (rest.empty() || rest.front() == '/') {
    return absl::InvalidArgumentError(StrCat("url '", url, "': no host"));
  }
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError(
          StrCat("url '", url, "': contains whitespace or control characters"));
    }
  }
  return absl::OkStatus();
}

class UpdateEngineImpl final : public UpdateEngine {
 public:
  UpdateEngineImpl(EngineOptions options, std::unique_ptr<boot::BootController> boot,
                   const boot::BootState& initial_state, FetcherFactory fetcher_factory)
      : options_(std::move(options)),
        session_options_(options_),
        boot_(std::move(boot)),
        fetcher_factory_(std::move(fetcher_factory)) {
    // Right after the switch is committed: the wait before the reboot (for the secondaries) is
    // upstream's FINALIZING_UPDATE, and the metrics record's finalizing_update_start_timestamp
    // starts there.
    session_options_.before_reboot = [this] {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (options_.before_reboot) snapshot_.progress.phase = UpdatePhase::kFinalizingUpdate;
        MarkPhaseStartLocked(UpdatePhase::kFinalizingUpdate);
      }
      if (options_.before_reboot) options_.before_reboot();
    };
    snapshot_.status = FromSlotStatus(initial_state.status);
    snapshot_.firmware_version = initial_state.version;
    // The running image's release, from its slot's version_detail (upstream reports it too).
    snapshot_.release_name = initial_state.release.release_name;
    snapshot_.release_id = initial_state.release.release_id;
    snapshot_.image_id = initial_state.release.image_id;
    if (snapshot_.status == OtaStatus::kFailure) {
      // Found at boot (fallback or an interrupted update): the old slot runs, a retry can work.
      snapshot_.failure_type = static_cast<int>(FailureKind::kRecoverable);
      snapshot_.failure_reason = initial_state.failure_reason;
    }
  }

  ~UpdateEngineImpl() override {
    RequestStop();
    std::thread worker;
    {
      std::lock_guard<std::mutex> lock(mu_);
      worker = std::move(worker_);
    }
    if (worker.joinable()) worker.join();
  }

  void RequestStop() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!shutting_down_.exchange(true)) {
      log::Info("stop requested: a running update is cancelled, no reboot from now on",
                {{"phase", SessionPhaseName(phase_)}});
    }
    cancel_.store(true);
    cancel_.notify_all();  // for anything blocked in cancel_.wait()
  }

  absl::Status StartUpdate(const UpdateRequestParams& request) override {
    std::lock_guard<std::mutex> control(control_mu_);
    std::thread finished;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (rollback_running()) {
        return absl::FailedPreconditionError(
            StrCat("a rollback is in progress (phase ", SessionPhaseName(phase_), ")"));
      }
      if (IsBusy(phase_)) {
        return absl::FailedPreconditionError(StrCat("update already in progress (version ",
                                                    snapshot_.progress.update_firmware_version,
                                                    ", phase ", SessionPhaseName(phase_), ")"));
      }
      const SessionPhase resting = phase_;
      EnterLocked(SessionPhase::kValidatingRequest);
      if (absl::Status valid = ValidateUpdateRequest(request); !valid.ok()) {
        log::Warning("update request rejected",
                     {{"request_id", request.request_id}, {"error", std::string(valid.message())}});
        EnterLocked(resting);
        return valid;
      }
      // Accepted. The previous session (if any) has finished all its writes and cancel checks:
      // it only logs after entering Failed or Aborted.
      counters_.Reset();
      cancel_.store(shutting_down_.load());
      kind_ = SessionKind::kUpdate;
      abort_ = AbortState::kNone;
      snapshot_.status = OtaStatus::kUpdating;
      snapshot_.failure_type = 0;
      snapshot_.failure_reason.clear();
      // The release fields stay the running image's: the requested ones are recorded with the
      // new slot and reported once it runs (as upstream).
      snapshot_.progress = Progress{};
      snapshot_.progress.update_firmware_version = request.version;
      snapshot_.progress.update_start_timestamp = static_cast<uint64_t>(std::time(nullptr));
      snapshot_.progress.phase_start_timestamps.at(0) = snapshot_.progress.update_start_timestamp;
      update_start_ = Clock::now();
      current_request_ = request;
      session_end_reported_ = false;
      phase_elapsed_ms_.Fill(0);
      frozen_total_ms_.reset();
      finished = std::move(worker_);
    }
    log::Info(
        "update accepted",
        {{"request_id", request.request_id}, {"version", request.version}, {"url", request.url}});
    if (finished.joinable()) finished.join();  // already past its last phase
    std::lock_guard<std::mutex> lock(mu_);
    worker_ = std::thread([this, request] {
      LowerWorkerPriority();
      RunSession(request);
      ReleaseFreeMemory();  // a 300k-entry session's tables and buffers
      log::Info("update session ended, memory released",
                {{"resident_kib", std::to_string(ResidentSetKib())}});
    });
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> Abort() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (rollback_running() || !IsBusy(phase_)) {
      return absl::FailedPreconditionError("Cannot abort: no active OTA update in progress");
    }
    if (abort_ != AbortState::kNone) {
      log::Info("abort already requested", {{"phase", SessionPhaseName(phase_)}});
      return std::string("Abort already in progress");  // the first request is carried out
    }
    if (IsFinalPhase(phase_)) {
      return absl::FailedPreconditionError("Cannot abort: update is in FINAL_PHASE");
    }
    abort_phase_ = phase_;
    if (phase_ == SessionPhase::kPreparingStandby) {
      // The critical zone: the status stays UPDATING until the zone is left (Enter()).
      abort_ = AbortState::kQueued;
      log::Info("abort queued: the standby is being prepared; it fires when that part ends",
                {{"phase", SessionPhaseName(phase_)}});
      return std::string("Abort queued, will proceed after critical zone exits");
    }
    abort_ = AbortState::kRequested;
    snapshot_.status = OtaStatus::kAborting;
    log::Info("abort requested", {{"phase", SessionPhaseName(phase_)}});
    cancel_.store(true);
    cancel_.notify_all();
    return std::string("Abort accepted, aborting update immediately");
  }

  absl::Status StartRollback() override {
    // Serialised with StartUpdate. Nothing here blocks on the boot controller: its check runs on
    // the rollback thread (CBoot asks nvbootctrl and mounts the other slot for it).
    std::lock_guard<std::mutex> control(control_mu_);
    std::thread finished;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (rollback_running()) {
        return absl::FailedPreconditionError(
            StrCat("cannot roll back: a rollback is already in progress (phase ",
                   SessionPhaseName(phase_), ")"));
      }
      if (IsBusy(phase_)) {
        return absl::FailedPreconditionError(StrCat(
            "cannot roll back: an update is in progress (version ",
            snapshot_.progress.update_firmware_version, ", phase ", SessionPhaseName(phase_), ")"));
      }
      rollback_resting_ = phase_;
      rollback_resting_status_ = snapshot_;
      EnterLocked(SessionPhase::kCheckingRollback);
      kind_ = SessionKind::kRollback;
      rollback_answered_ = false;
      rollback_refusal_.reset();
      snapshot_.status = OtaStatus::kRollbacking;
      snapshot_.failure_type = 0;
      snapshot_.failure_reason.clear();
      log::Info("rollback requested; checking the other slot",
                {{"running", snapshot_.firmware_version}});
      finished = std::move(worker_);
    }
    if (finished.joinable()) finished.join();  // already past its last phase
    std::unique_lock<std::mutex> lock(mu_);
    worker_ = std::thread([this] { RunRollback(); });
    // A check that answers at once (the directory and GRUB backends read a few small files)
    // still refuses here; a slower one does not hold the caller: the rollback is acknowledged
    // and a refusal becomes its result in Status (ROLLBACK_FAILURE with the reason).
    rollback_cv_.wait_for(lock, options_.rollback_check_wait,
                          [&] { return phase_ != SessionPhase::kCheckingRollback; });
    rollback_answered_ = true;
    if (rollback_refusal_.has_value()) return *std::exchange(rollback_refusal_, std::nullopt);
    log::Info("rollback accepted", {{"phase", SessionPhaseName(phase_)}});
    return absl::OkStatus();
  }

  StatusSnapshot Snapshot() const override {
    std::lock_guard<std::mutex> lock(mu_);
    StatusSnapshot out = snapshot_;
    counters_.FillCounters(out.progress);
    const Clock::time_point now = Clock::now();
    auto phase_ms = [&](SessionPhase p) {
      uint64_t ms = phase_elapsed_ms_[p];
      if (phase_ == p) ms += MillisBetween(phase_start_, now);
      return ms;
    };
    out.progress.delta_elapsed_ms = phase_ms(SessionPhase::kCalculatingDelta);
    out.progress.download_elapsed_ms = phase_ms(SessionPhase::kDownloading);
    out.progress.apply_elapsed_ms = phase_ms(SessionPhase::kApplying);
    if (snapshot_.progress.update_start_timestamp != 0) {
      out.progress.total_elapsed_ms = frozen_total_ms_.value_or(MillisBetween(update_start_, now));
    }
    return out;
  }

 private:
  // Moves the state machine; the caller holds mu_. A disallowed transition is a bug.
  void EnterLocked(SessionPhase to) {
    if (!TransitionAllowed(phase_, to)) {
      log::Error("BUG: disallowed update phase transition",
                 {{"from", SessionPhaseName(phase_)}, {"to", SessionPhaseName(to)}});
      std::abort();
    }
    log::Info("update phase", {{"from", SessionPhaseName(phase_)}, {"to", SessionPhaseName(to)}});
    const Clock::time_point now = Clock::now();
    phase_elapsed_ms_[phase_] += MillisBetween(phase_start_, now);
    phase_start_ = now;
    phase_ = to;
    // Failed, aborted and rejected requests keep the phase the update reached, for inspection;
    // a rollback is no update and leaves the last update's progress alone.
    if (to != SessionPhase::kFailed && to != SessionPhase::kIdle &&
        to != SessionPhase::kValidatingRequest && to != SessionPhase::kAborted &&
        to != SessionPhase::kRollingBack && to != SessionPhase::kCheckingRollback &&
        kind_ != SessionKind::kRollback) {
      snapshot_.progress.phase = WirePhase(to);
      snapshot_.progress.v1_phase = DefaultV1Phase(to);
      MarkPhaseStartLocked(snapshot_.progress.phase);
      if (to == SessionPhase::kRebooting) {
        snapshot_.progress.reboot_start_timestamp = static_cast<uint64_t>(std::time(nullptr));
      }
    }
  }

  // The first entry of a wire phase, for the metrics record (Progress::phase_start_timestamps).
  void MarkPhaseStartLocked(UpdatePhase phase) {
    uint64_t& at = snapshot_.progress.phase_start_timestamps.at(static_cast<size_t>(phase));
    if (at == 0) at = static_cast<uint64_t>(std::time(nullptr));
  }

  // EngineOptions::on_session_end, once per update session.
  void ReportSessionEnd(bool committed, bool rebooting) {
    if (!options_.on_session_end) return;
    SessionEnd end;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (kind_ != SessionKind::kUpdate || session_end_reported_) return;
      session_end_reported_ = true;
      end.request = current_request_;
    }
    end.status = Snapshot();
    end.committed = committed;
    end.rebooting = rebooting;
    options_.on_session_end(end);
  }

  // Called by the session thread.
  absl::Status Enter(SessionPhase to) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      // A stop requested at any point before the reboot call prevents it (checked under mu_,
      // which RequestStop takes too).
      if (to == SessionPhase::kRebooting && shutting_down_.load()) {
        return absl::CancelledError(
            "stop requested: not rebooting; the committed switch takes effect at the next boot");
      }
      // Once CommitSwitch succeeded (Rebooting, Committed) nothing interrupts any more.
      const bool committed = to == SessionPhase::kRebooting || to == SessionPhase::kCommitted;
      if (!committed && abort_ == AbortState::kQueued) {
        // Leaving PreparingStandby, the critical part: the queued abort fires now.
        abort_ = AbortState::kRequested;
        snapshot_.status = OtaStatus::kAborting;
        log::Info("queued abort fires: the standby is prepared",
                  {{"phase", SessionPhaseName(phase_)}});
        cancel_.store(true);
        cancel_.notify_all();
      }
      if (!committed && abort_ == AbortState::kRequested) {
        return absl::CancelledError(
            StrCat("update aborted by request during ", SessionPhaseName(abort_phase_)));
      }
      if (cancel_.load() && !committed) {
        return absl::CancelledError("update interrupted: otaclient is shutting down");
      }
      EnterLocked(to);
    }
    if (to == SessionPhase::kRebooting || to == SessionPhase::kCommitted) {
      ReportSessionEnd(/*committed=*/true, /*rebooting=*/to == SessionPhase::kRebooting);
    }
    if (options_.test_phase_hook) options_.test_phase_hook(SessionPhaseName(to));
    return absl::OkStatus();
  }

  void SetV1Phase(V1Phase phase) {
    std::lock_guard<std::mutex> lock(mu_);
    snapshot_.progress.v1_phase = phase;
  }

  bool AbortRequested() {
    std::lock_guard<std::mutex> lock(mu_);
    return abort_ != AbortState::kNone;
  }

  // Caller holds mu_.
  bool rollback_running() const { return kind_ == SessionKind::kRollback && IsBusy(phase_); }

  // The session/rollback thread runs in the background of the service (and of the vehicle).
  void LowerWorkerPriority() {
    if (absl::Status lowered = LowerThisThreadPriority(options_.worker_nice); !lowered.ok()) {
      log::Warning("update runs at the service's priority",
                   {{"error", std::string(lowered.message())}});
    }
  }

  void RunRollback() {
    const absl::Status possible = WithContext(boot_->CheckRollbackPossible(), "cannot roll back");
    if (!possible.ok()) {
      bool answered = false;
      {
        std::lock_guard<std::mutex> lock(mu_);
        answered = rollback_answered_;
        if (!answered) {
          // The caller still waits: it answers with the refusal, and nothing changed.
          EnterLocked(rollback_resting_);
          snapshot_ = rollback_resting_status_;
          rollback_refusal_ = possible;
        } else {
          const OtaFailure failure = DescribeOtaFailure(OtaStage::kRollbackCheck, possible);
          EnterLocked(SessionPhase::kFailed);
          snapshot_.status = OtaStatus::kRollbackFailure;
          snapshot_.failure_type = static_cast<int>(failure.kind);
          snapshot_.failure_reason = failure.reason;
        }
        rollback_cv_.notify_all();
      }
      log::Warning("rollback refused", {{"reason", std::string(possible.message())},
                                        {"reported", answered ? "in Status" : "to the caller"}});
      if (answered && options_.test_phase_hook) {
        options_.test_phase_hook(SessionPhaseName(SessionPhase::kFailed));
      }
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      EnterLocked(SessionPhase::kRollingBack);
      rollback_cv_.notify_all();
    }
    LowerWorkerPriority();
    absl::Status committed = boot_->CommitRollback();
    if (!committed.ok()) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        const OtaFailure failure = DescribeOtaFailure(OtaStage::kRollbackCommit,
                                                      WithContext(committed, "rollback failed"));
        EnterLocked(SessionPhase::kFailed);
        snapshot_.status = OtaStatus::kRollbackFailure;
        snapshot_.failure_type = static_cast<int>(failure.kind);
        snapshot_.failure_reason = failure.reason;
      }
      log::Error("rollback failed", {{"error", std::string(committed.message())}});
      if (options_.test_phase_hook) {
        options_.test_phase_hook(SessionPhaseName(SessionPhase::kFailed));
      }
      return;
    }
    if (options_.reboot_after_update) {
      if (options_.before_reboot) options_.before_reboot();
      if (absl::Status rebooting = Enter(SessionPhase::kRebooting); !rebooting.ok()) {
        log::Info("not rebooting", {{"reason", std::string(rebooting.message())}});
      } else if (absl::Status rebooted = boot_->Reboot(); !rebooted.ok()) {
        log::Error("reboot failed; the previous slot boots on the next restart",
                   {{"error", std::string(rebooted.message())}});
      }
    }
    (void)Enter(SessionPhase::kCommitted);
  }

  void RunSession(const UpdateRequestParams& request) {
    SessionEnv env{
        .options = session_options_,
        .boot = *boot_,
        .fetcher_factory = fetcher_factory_,
        .counters = counters_,
        .cancel = cancel_,
        .enter = [this](SessionPhase to) { return Enter(to); },
        .set_v1_phase = [this](V1Phase p) { SetV1Phase(p); },
        .abort_requested = [this] { return AbortRequested(); },
    };
    if (options_.on_session_start) options_.on_session_start(request);
    absl::Status status = RunUpdateSession(request, env);
    if (status.ok()) return;
    bool aborted = false;
    std::string abort_reason;
    {
      std::lock_guard<std::mutex> lock(mu_);
      aborted = abort_ != AbortState::kNone;
      if (aborted) {
        // Whatever error the interrupted step returned, the outcome is the abort.
        abort_reason = StrCat("update to version ", request.version, " aborted by request during ",
                              SessionPhaseName(abort_phase_));
        EnterLocked(SessionPhase::kAborted);
        snapshot_.status = OtaStatus::kAborted;
        snapshot_.failure_type = 0;
        snapshot_.failure_reason = abort_reason;
        frozen_total_ms_ = MillisBetween(update_start_, Clock::now());
      }
    }
    if (aborted) {
      log::Info("update aborted", {{"request_id", request.request_id},
                                   {"version", request.version},
                                   {"reason", abort_reason},
                                   {"stopped_by", std::string(status.message())}});
      ReportSessionEnd(/*committed=*/false, /*rebooting=*/false);
      if (options_.test_phase_hook) {
        options_.test_phase_hook(SessionPhaseName(SessionPhase::kAborted));
      }
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      // The phase the session failed in decides the error code, as upstream's stages do.
      const OtaFailure failure = DescribeOtaFailure(FailureStage(phase_), status);
      EnterLocked(SessionPhase::kFailed);
      snapshot_.status = OtaStatus::kFailure;
      snapshot_.failure_type = static_cast<int>(failure.kind);
      snapshot_.failure_reason = failure.reason;
      frozen_total_ms_ = MillisBetween(update_start_, Clock::now());
    }
    log::Error("update failed", {{"version", request.version},
                                 {"code", absl::StatusCodeToString(status.code())},
                                 {"reason", std::string(status.message())}});
    ReportSessionEnd(/*committed=*/false, /*rebooting=*/false);
    if (options_.test_phase_hook) options_.test_phase_hook(SessionPhaseName(SessionPhase::kFailed));
  }

  const EngineOptions options_;
  // What the session runs with: options_, its before_reboot reporting FINALIZING_UPDATE first.
  EngineOptions session_options_;
  const std::unique_ptr<boot::BootController> boot_;
  const FetcherFactory fetcher_factory_;
  // Set by Abort() and by the destructor; read by every long step of the session.
  std::atomic<bool> cancel_{false};
  std::atomic<bool> shutting_down_{false};
  ProgressCounters counters_;

  // The parts of the engine's state beside the phase (update_session.h: kind, phase, abort).
  enum class SessionKind { kNone, kUpdate, kRollback };
  enum class AbortState { kNone, kQueued, kRequested };

  std::mutex control_mu_;  // serialises StartUpdate and StartRollback; taken before mu_
  mutable std::mutex mu_;
  SessionPhase phase_ = SessionPhase::kIdle;
  StatusSnapshot snapshot_;
  Clock::time_point update_start_{};
  UpdateRequestParams current_request_;  // the update session's request (metrics)
  bool session_end_reported_ = true;     // on_session_end was called for this session
  Clock::time_point phase_start_ = Clock::now();
  PerPhase<uint64_t> phase_elapsed_ms_;
  std::optional<uint64_t> frozen_total_ms_;
  SessionKind kind_ = SessionKind::kNone;
  // A rollback's check (CheckingRollback): the phase and status to return to when it is refused
  // while the caller still waits for the answer, whether the caller has been answered, and the
  // refusal handed to it.
  std::condition_variable rollback_cv_;
  SessionPhase rollback_resting_ = SessionPhase::kIdle;
  StatusSnapshot rollback_resting_status_;
  bool rollback_answered_ = true;
  std::optional<absl::Status> rollback_refusal_;
  AbortState abort_ = AbortState::kNone;
  SessionPhase abort_phase_ = SessionPhase::kIdle;  // where the abort caught the session
  std::thread worker_;
};

class UnavailableUpdateEngine final : public UpdateEngine {
 public:
  explicit UnavailableUpdateEngine(std::string failure_reason) {
    snapshot_.status = OtaStatus::kFailure;
    snapshot_.failure_type = static_cast<int>(FailureKind::kUnrecoverable);
    snapshot_.failure_reason = std::move(failure_reason);
  }

  absl::Status StartUpdate(const UpdateRequestParams& /*request*/) override { return Refusal(); }
  absl::Status StartRollback() override { return Refusal(); }
  absl::StatusOr<std::string> Abort() override {
    return absl::FailedPreconditionError("Cannot abort: no active OTA update in progress");
  }
  StatusSnapshot Snapshot() const override { return snapshot_; }

 private:
  // UNRECOVERABLE: this ECU cannot take updates until it is fixed and otaclient restarted.
  absl::Status Refusal() const {
    return LocalFailure(absl::FailedPreconditionError(
        StrCat("this ECU cannot update: ", snapshot_.failure_reason)));
  }

  StatusSnapshot snapshot_;
};

}  // namespace

absl::Status ValidateUpdateRequest(const UpdateRequestParams& request) {
  if (request.version.empty()) return absl::InvalidArgumentError("version must not be empty");
  OTA_RETURN_IF_ERROR(ValidateUrl(request.url));
  absl::StatusOr<std::map<std::string, std::string>> cookies =
      http::ParseCookiesJson(request.cookies_json);
  if (!cookies.ok()) return cookies.status();  // its messages start with "cookies: "
  return absl::OkStatus();
}

std::unique_ptr<UpdateEngine> CreateUnavailableUpdateEngine(std::string failure_reason) {
  return std::make_unique<UnavailableUpdateEngine>(std::move(failure_reason));
}

std::unique_ptr<UpdateEngine> CreateUpdateEngine(EngineOptions options,
                                                 std::unique_ptr<boot::BootController> boot,
                                                 const boot::BootState& initial_state,
                                                 FetcherFactory fetcher_factory) {
  return std::make_unique<UpdateEngineImpl>(std::move(options), std::move(boot), initial_state,
                                            std::move(fetcher_factory));
}

}  // namespace ota::update
