// The update session: ONE explicit state machine over the phases of a single-ECU update.
//
//   Idle ─► ValidatingRequest ─► ProcessingMetadata ─► PreparingStandby ─► CalculatingDelta
//     ▲            │                                                              │
//     └─(rejected)─┘   Downloading ◄──────────────────────────────────────────────┘
//                          │
//                          ▼
//                      Applying ─► Persistents ─► PostUpdate ─► Rebooting ─► Committed
//                                                     └──────────────────────► Committed
//   Any phase from ProcessingMetadata up to PostUpdate (before CommitSwitch succeeded) ─► Failed;
//   the same phases ─► Aborted when UpdateEngine::Abort() stopped the session (see below);
//   ValidatingRequest ─► Aborted too when Abort() came before the session thread started.
//   Failed, Aborted ─► ValidatingRequest (the next update may start at once).
//
//   Rollback (UpdateEngine::StartRollback):
//     Idle | Failed | Aborted ─► RollingBack ─► Rebooting ─► Committed
//                                     └─► Committed (reboot_after_update off)
//                                     └─► Failed (CommitRollback failed: ROLLBACK_FAILURE)
//
// Abort (UpdateEngine::Abort): the engine sets the session's cancel flag, which every long step
// checks (metadata and blob downloads through the fetcher, delta hashing, apply workers) and
// which makes the next phase transition fail with kCancelled; worker threads are joined as
// those steps return. Two windows change the rule:
//   critical part  boot->PrepareStandby() (mark unbootable, clean/format, mount) is not
//                  interrupted: an abort arriving then is queued (status ABORTING) and fires the
//                  moment PrepareStandby returns.
//   final part     from just before CommitSwitch (after the resources dir is removed and the
//                  standby synced) an abort is refused: the boot switch is (being) committed.
// An aborted session leaves the standby unbootable (boot->OnUpdateFailed(kAborted) when it had
// been prepared) and keeps /.ota-resources, so the next update resumes. Status: ABORTING from the
// accepted Abort() until the session thread is done, then ABORTED (no failure type; the reason
// names the phase that was interrupted).
//
// What is persisted when (everything else lives in memory):
//   ValidatingRequest   nothing; a rejected request changes nothing.
//   ProcessingMetadata  nothing: the image is fetched and verified into memory; a failure here
//                       leaves both slots untouched.
//   PreparingStandby    the boot controller marks the standby UPDATING (unbootable) with the new
//                       version, then cleans it, keeping /.ota-resources (resume).
//   CalculatingDelta    <standby>/.ota-resources/<sha256hex>: each file appears complete and
//                       verified (temp name + rename); invalid leftovers are deleted.
//   Downloading         more resources, the same way (the fetcher renames only verified files).
//   Applying            the standby tree: dirs, symlinks, regular files, hard links.
//   Persistents         persistent files copied from the active slot.
//   PostUpdate          resources dir removed, syncfs of the standby, then CommitSwitch: the
//                       one-shot boot switch is persisted — the point of no return.
//   Rebooting           nothing; Reboot() does not return on a real machine.
//   Committed           nothing; the engine stays busy until the reboot (the standby is armed).
//   Failed              boot->OnUpdateFailed(FAILURE) when the standby was prepared; the
//                       resources dir is kept so the next attempt resumes; never the active slot.
//   Aborted             boot->OnUpdateFailed(ABORTED) when the standby was prepared (before that:
//                       nothing, both slots untouched); resources kept as for Failed.
//   RollingBack         boot->CommitRollback(): the other slot ROLLBACKING + a try-once switch.
// A crash anywhere before CommitSwitch leaves the standby UPDATING without a switch, which the
// next ConfirmBoot reports as FAILURE; the active slot is never written.
#pragma once

#include <atomic>
#include <functional>
#include <string_view>

#include "absl/status/status.h"
#include "otaclient/boot/boot_controller.h"
#include "otaclient/update/progress.h"
#include "otaclient/update/status_snapshot.h"
#include "otaclient/update/update_engine.h"

namespace ota::update {

enum class SessionPhase {
  kIdle,
  kValidatingRequest,
  kProcessingMetadata,
  kPreparingStandby,
  kCalculatingDelta,
  kDownloading,
  kApplying,
  kPersistents,
  kPostUpdate,
  kRebooting,
  kCommitted,
  kFailed,
  kAborted,
  kRollingBack,
};

std::string_view SessionPhaseName(SessionPhase phase);
bool TransitionAllowed(SessionPhase from, SessionPhase to);
// A session owns the slots in every phase except Idle, Failed and Aborted.
bool IsBusy(SessionPhase phase);
// The wire's v2 UpdatePhase and the v1 phase shown for a session phase (during Applying the
// session refines the v1 phase into DIRECTORY / SYMLINK / REGULAR as it goes).
UpdatePhase WirePhase(SessionPhase phase);
V1Phase DefaultV1Phase(SessionPhase phase);

// What a session needs from the engine that runs it.
struct SessionEnv {
  const EngineOptions& options;
  boot::BootController& boot;
  const FetcherFactory& fetcher_factory;
  ProgressCounters& counters;
  const std::atomic<bool>& cancel;
  // Moves the state machine (checked against TransitionAllowed, logged, timed). Refuses with
  // kCancelled when the engine is shutting down or the update was aborted, and the switch is not
  // committed yet.
  std::function<absl::Status(SessionPhase)> enter;
  std::function<void(V1Phase)> set_v1_phase;
  // Brackets boot->PrepareStandby(): an abort arriving in between is queued; leaving returns
  // kCancelled when one was queued (it fires then).
  std::function<void()> enter_critical;
  std::function<absl::Status()> leave_critical;
  // The point of no return, right before CommitSwitch: kCancelled when an abort was requested,
  // else from now on Abort() is refused.
  std::function<absl::Status()> begin_commit;
  // Whether the session was stopped by Abort() (the standby is then marked ABORTED, not FAILURE).
  std::function<bool()> abort_requested;
};

// Internal tuning (not configuration).
inline constexpr int kHashThreads = 3;
inline constexpr int kApplyThreads = 4;

// Runs one update from ProcessingMetadata to Committed. Returns OK once the boot switch is
// committed (and Reboot() returned, on test backends), else the failure — after marking the
// standby failed (or aborted) if it had been prepared. The caller moves the machine to Failed
// (or Aborted).
absl::Status RunUpdateSession(const UpdateRequestParams& request, const SessionEnv& env);

}  // namespace ota::update
