// The single-ECU update: one session at a time, run on its own thread, driven by the explicit
// state machine in update_session.h. The gRPC service talks only to this class.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/http/fetcher.h"
#include "otaclient/boot/boot_controller.h"
#include "otaclient/update/slot_table.h"
#include "otaclient/update/status_snapshot.h"

namespace ota::update {

struct UpdateRequestParams {
  std::string version;
  std::string url;           // image base URL, http(s)
  std::string cookies_json;  // "" or a JSON object
  std::string release_name, release_id, image_id;
  std::string request_id;
};

// What StartUpdate checks before anything else (kInvalidArgument naming the problem): a version,
// an http:// or https:// URL with a host and no whitespace or control characters, cookies ""
// or a JSON object of strings (http::ParseCookiesJson).
absl::Status ValidateUpdateRequest(const UpdateRequestParams& request);

class UpdateEngine {
 public:
  virtual ~UpdateEngine() = default;
  // Validates and starts an update in the background; returns within milliseconds.
  // kFailedPrecondition when busy (nothing changes), kInvalidArgument for a bad request
  // (nothing changes either: a bad request never disturbs a running update).
  virtual absl::Status StartUpdate(const UpdateRequestParams& request) = 0;
  virtual StatusSnapshot Snapshot() const = 0;

  // Stops the running update (wire Abort) without killing anything: the session's cancel flag
  // stops downloads, hashing and apply workers within well under a second, the session thread
  // then marks the standby ABORTED (unbootable, /.ota-resources kept so the next update resumes)
  // and the status goes ABORTING → ABORTED. The next StartUpdate works at once.
  // The rules and messages are the Python client's (they are the AbortResponseEcu's message):
  //   nothing running (idle, finished, failed, aborted, a rollback): kFailedPrecondition
  //     "Cannot abort: no active OTA update in progress"
  //   an abort already queued or running: OK "Abort already in progress" (nothing changes)
  //   the final phase, from the persistent files on (Persistents, PostUpdate, CommittingSwitch
  //     and after): kFailedPrecondition "Cannot abort: update is in FINAL_PHASE"
  //   the critical zone (PreparingStandby: marking, cleaning, formatting, mounting the standby):
  //     OK "Abort queued, will proceed after critical zone exits"; the status stays UPDATING
  //     until the zone is left, then ABORTING
  //   otherwise: OK "Abort accepted, aborting update immediately" (status ABORTING at once).
  // Returns without waiting for the session to end.
  virtual absl::StatusOr<std::string> Abort() {
    return absl::UnimplementedError("abort is not implemented");
  }

  // Switches back to the other slot when it holds the previous good image (wire Rollback), with
  // the same try-once-then-confirm mechanism as an update. Returns within ~300 ms: the status
  // becomes ROLLBACKING and the rollback thread asks boot->CheckRollbackPossible() (which may
  // block: CBoot runs nvbootctrl and mounts the other slot), then calls boot->CommitRollback()
  // and, with reboot_after_update, before_reboot and Reboot(). A refusal of the check that
  // comes while the caller still waits (the first ~300 ms) is returned (kFailedPrecondition
  // "cannot roll back: ...", nothing changes, the status is what it was); a later one is the
  // rollback's result in Status: ROLLBACK_FAILURE with the reason. A CommitRollback failure is
  // ROLLBACK_FAILURE with the reason too.
  // kFailedPrecondition at once when an update runs (or a rollback is already in progress).
  virtual absl::Status StartRollback() {
    return absl::UnimplementedError("rollback is not implemented");
  }

  // The service is stopping (SIGTERM): cancels a running update like the destructor does, and
  // from now on Reboot() is never called — a stop requested at any point before the reboot call
  // prevents it, also after the boot switch was committed (the new slot then boots at the next
  // start). Idempotent; returns at once.
  virtual void RequestStop() {}
  // Whether a ClientUpdate may start now (the client update itself runs beside the engine,
  // client_update.h). kFailedPrecondition with the reason when not: by default while the status
  // is UPDATING, ABORTING or ROLLBACKING (upstream's busy rule; this includes an update that has
  // committed its switch and waits for the reboot). Engines with more states refine it.
  virtual absl::Status ClientUpdateAllowed() const {
    const OtaStatus now = Snapshot().status;
    if (now == OtaStatus::kUpdating || now == OtaStatus::kAborting ||
        now == OtaStatus::kRollbacking) {
      return absl::FailedPreconditionError("an update, abort or rollback is in progress");
    }
    return absl::OkStatus();
  }
};

// How an update session ended, for EngineOptions::on_session_end (the fleet metrics record).
struct SessionEnd {
  UpdateRequestParams request;
  // The status at that moment: kFailure or kAborted, or still kUpdating when committed (SUCCESS
  // comes with the first start in the new slot); progress holds the counters and the phase
  // timestamps.
  StatusSnapshot status;
  bool committed = false;  // the boot switch is committed
  bool rebooting = false;  // Reboot() is called as soon as the hook returns
};

struct EngineOptions {
  std::filesystem::path certs_dir = "/opt/ota/client/certs";
  bool allow_unverified_dev = false;  // no CA installed → accept any signer (loudly logged)
  // OTA image v1: the payload for this ECU is chosen by (ecu_id, release_key).
  std::string ecu_id = "autoware";
  std::string release_key = "dev";
  // Proxy, CA bundle, parallelism, retries. Cookies are filled in per request.
  http::FetcherConfig fetcher;
  bool reboot_after_update = true;  // false: stop after CommitSwitch (tests, manual reboot)
  // Optional: called on the session thread after CommitSwitch and before Reboot(), e.g. to wait
  // until child ECUs have finished their own updates (the main ECU reboots last).
  std::function<void()> before_reboot;
  // Nice value of the session and rollback threads and everything they start (0..19, 0 = as the
  // service); their I/O priority drops to best-effort 7 with it (background_priority.h).
  int worker_nice = 10;
  // Optional observers of update sessions (never called for rollbacks), on the session thread:
  // on_session_start before the first phase; on_session_end once per session, after it entered
  // Failed or Aborted, or once the switch is committed: right before Reboot() (after
  // before_reboot), or on entering Committed when there is no reboot. The reboot waits for
  // on_session_end: it must be quick (it may flush the log upload for a bounded moment, as the
  // deployed client sleeps 6 s before its reboot).
  std::function<void(const UpdateRequestParams& request)> on_session_start;
  std::function<void(const SessionEnd& end)> on_session_end;
  // How long StartRollback waits for the boot controller's check before acknowledging: a check
  // that answers within it (a few small files) is refused synchronously, a slower one (nvbootctrl,
  // a mount) reports its refusal in Status instead (ROLLBACK_FAILURE). The wait ends as soon as
  // the check answers. Tests about the refusal itself raise it, so that a loaded machine cannot
  // turn the synchronous refusal into the Status one.
  std::chrono::milliseconds rollback_check_wait{300};
  // Install hooks (install_hooks.h): <install_hooks_dir>/pre-install and post-install when
  // present; empty: none. Each runs for at most install_hook_timeout.
  std::filesystem::path install_hooks_dir;
  std::chrono::milliseconds install_hook_timeout{std::chrono::minutes(10)};
  // TEST ONLY, never set in production: called on the session thread right after each phase
  // transition the session makes (names from update_session.h: "ProcessingMetadata", ...,
  // "Committed", "Failed", "Aborted"; a rollback reports "Rebooting", "Committed" or "Failed").
  // It may block to hold the session in that phase.
  std::function<void(std::string_view phase)> test_phase_hook;
  // How the standby is written (--standby-mode): auto decides per update (slot_table.h
  // DecideStandbyMode), in-place / rebuild force either (in-place still rebuilds a standby whose
  // file system is not fit).
  StandbyModeSetting standby_mode = StandbyModeSetting::kAuto;
  // TEST ONLY, never set in production: called on the session thread at named steps of writing
  // the standby ("standby:decided", "inplace:removed", "apply:symlinks", "apply:regulars",
  // "post:synced", "post:recorded"); it may block, or end the process to simulate a crash.
  std::function<void(std::string_view step)> test_step_hook;
};

using FetcherFactory =
    std::function<std::unique_ptr<http::Fetcher>(const http::FetcherConfig& config)>;

// The engine owns the boot controller; ConfirmBoot() has already been called by the caller and
// its result is passed in as the initial state.
std::unique_ptr<UpdateEngine> CreateUpdateEngine(EngineOptions options,
                                                 std::unique_ptr<boot::BootController> boot,
                                                 const boot::BootState& initial_state,
                                                 FetcherFactory fetcher_factory);

// The engine of an ECU that cannot update: there is no usable boot controller (a `bootloader`
// this build has no backend for, a platform not detected, a boot state that cannot be read).
// The daemon keeps serving: Status reports FAILURE / UNRECOVERABLE with `failure_reason`, every
// StartUpdate and StartRollback is refused UNRECOVERABLE with the same reason (nothing starts),
// Abort answers that no update is running.
std::unique_ptr<UpdateEngine> CreateUnavailableUpdateEngine(std::string failure_reason);

}  // namespace ota::update
