// The update session: ONE explicit state machine over the phases of a single-ECU update.
//
//   Idle ─► ValidatingRequest ─► ProcessingMetadata ─► PreparingStandby ─► CalculatingDelta
//     ▲            │                                                              │
//     └─(rejected)─┘   Downloading ◄──────────────────────────────────────────────┘
//                          │
//                          ▼
//                      Applying ─► Persistents ─► PostUpdate ─► CommittingSwitch ─► Rebooting
//                                                                       │               │
//                                                                       └─► Committed ◄─┘
//   (CommittingSwitch ─► Committed directly: reboot_after_update off, or a stop requested)
//   Any phase from ProcessingMetadata up to CommittingSwitch (before CommitSwitch succeeded)
//   ─► Failed; ProcessingMetadata .. Applying ─► Aborted when UpdateEngine::Abort() stopped the
//   session (see below); ValidatingRequest ─► Aborted too when Abort() came before the session
//   thread started. Failed, Aborted ─► ValidatingRequest (the next update may start at once).
//
//   Rollback (UpdateEngine::StartRollback):
//     Idle | Failed | Aborted ─► CheckingRollback ─► RollingBack ─► Rebooting ─► Committed
//                                   │                    └─► Committed (reboot_after_update off,
//                                   │                                   or a stop requested)
//                                   │                    └─► Failed (CommitRollback failed:
//                                   │                                ROLLBACK_FAILURE)
//                                   ├─► back to Idle | Failed | Aborted (refused while the
//                                   │   caller still waited for the answer: nothing changed)
//                                   └─► Failed (refused after the acknowledgement:
//                                               ROLLBACK_FAILURE with the reason)
//   CheckingRollback runs boot->CheckRollbackPossible() on the rollback thread, never on the
//   caller's (a gRPC handler): CBoot's check runs nvbootctrl and mounts the other slot.
//   StartRollback waits for its verdict a short while (EngineOptions::rollback_check_wait,
//   300 ms): a quick refusal is still the call's answer, a slower check is acknowledged and
//   reported in Status.
//
// The engine's whole state is (kind, phase, abort):
//   kind   what the session is: an update (ValidatingRequest on) or a rollback
//          (CheckingRollback on); set when the engine accepts one, kept while it rests in
//          Failed/Aborted/Committed.
//          Rebooting and Committed after a rollback belong to the rollback (Abort says so).
//   phase  SessionPhase below; Persistents opens the final phase (upstream's FINAL_PHASE): it is
//          entered only when no abort was requested and the engine is not stopping, and from
//          then on an abort is refused. CommittingSwitch is the point of no return for a stop:
//          it lasts from just before CommitSwitch until the reboot decision, so it includes the
//          wait for secondaries (EngineOptions::before_reboot).
//   abort  None ─► Requested   Abort() in ValidatingRequest .. Applying except
//                              PreparingStandby: the cancel flag is set at once
//          None ─► Queued      Abort() in PreparingStandby, the critical part
//          Queued ─► Requested the session leaves PreparingStandby (its next phase transition,
//                              or PrepareStandby failing): the cancel flag is set then
//          back to None only when the next update is accepted.
//
// Abort (UpdateEngine::Abort): the engine sets the session's cancel flag, which every long step
// checks (metadata and blob downloads through the fetcher, delta hashing, apply workers) and
// which makes the next phase transition fail with kCancelled; worker threads are joined as
// those steps return. Two windows change the rule:
//   critical part  PreparingStandby: boot->PrepareStandby() (mark unbootable, clean/format,
//                  mount) is not interrupted: an abort arriving then is queued (the status stays
//                  UPDATING, as upstream) and fires the moment the session leaves the phase.
//   final part     from Persistents on (the image is applied; persistent files, post-update,
//                  the boot switch, the wait for secondaries) an abort is refused, as
//                  upstream's FINAL_PHASE.
// An aborted session leaves the standby unbootable (boot->OnUpdateFailed(kAborted) when it had
// been prepared) and keeps /.ota-resources, so the next update resumes. Status: ABORTING from the
// accepted Abort() until the session thread is done, then ABORTED (no failure type; the reason
// names the phase that was interrupted).
//
// Stop (UpdateEngine::RequestStop, also the engine's destructor): cancels like an abort before
// CommittingSwitch (the session ends Failed, "otaclient is shutting down"); after the switch is
// committed it never enters Rebooting: a stop requested at any point before the reboot call
// prevents the reboot (the session goes to Committed; the new slot boots at the next start).
//
// What is persisted when (everything else lives in memory):
//   ValidatingRequest   nothing; a rejected request changes nothing.
//   ProcessingMetadata  nothing: the image is fetched and verified into memory; a failure here
//                       leaves both slots untouched.
//   PreparingStandby    the boot controller marks the standby UPDATING (unbootable) with the new
//                       version, then cleans it, keeping /.ota-resources (resume); then the
//                       pre-install hook runs (install_hooks.h; an abort queued meanwhile waits
//                       for it).
//   CalculatingDelta    <standby>/.ota-resources/<sha256hex>: each file appears complete and
//                       verified (temp name + rename); invalid leftovers are deleted.
//   Downloading         more resources, the same way (the fetcher renames only verified files).
//   Applying            the standby tree: dirs, symlinks, regular files, hard links.
//   Persistents         persistent files copied from the active slot.
//   PostUpdate          resources dir removed, the post-install hook, syncfs of the standby.
//   CommittingSwitch    CommitSwitch: the one-shot boot switch is persisted — the point of no
//                       return; then the wait for secondaries.
//   Rebooting           nothing; Reboot() does not return on a real machine.
//   Committed           nothing; the engine stays busy until the reboot (the standby is armed).
//   Failed              boot->OnUpdateFailed(FAILURE) when the standby was prepared; the
//                       resources dir is kept so the next attempt resumes; never the active slot.
//   Aborted             boot->OnUpdateFailed(ABORTED) when the standby was prepared (before that:
//                       nothing, both slots untouched); resources kept as for Failed.
//   CheckingRollback    nothing (boot->CheckRollbackPossible() only reads; CBoot mounts the
//                       other slot read-only).
//   RollingBack         boot->CommitRollback(): the other slot ROLLBACKING + a try-once switch.
// A crash anywhere before CommitSwitch leaves the standby UPDATING without a switch, which the
// next ConfirmBoot reports as FAILURE; the active slot is never written.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <functional>
#include <string_view>

#include "absl/status/status.h"
#include "common/util/errors.h"
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
  kCommittingSwitch,
  kRebooting,
  kCommitted,
  kFailed,
  kAborted,
  kCheckingRollback,
  kRollingBack,
  kCount,  // not a phase: the number of phases; every table indexed by phase has this size
};
inline constexpr size_t kSessionPhaseCount = static_cast<size_t>(SessionPhase::kCount);

// A value per phase (e.g. time spent in it), indexed by the phase itself: sized by the enum, so
// no phase can be out of range (and _GLIBCXX_ASSERTIONS checks the index in every build).
template <typename T>
class PerPhase {
 public:
  T& operator[](SessionPhase phase) { return values_[static_cast<size_t>(phase)]; }
  const T& operator[](SessionPhase phase) const { return values_[static_cast<size_t>(phase)]; }
  void Fill(const T& value) { values_.fill(value); }

 private:
  std::array<T, kSessionPhaseCount> values_{};
};

std::string_view SessionPhaseName(SessionPhase phase);
bool TransitionAllowed(SessionPhase from, SessionPhase to);
// A session owns the slots in every phase except Idle, Failed and Aborted.
bool IsBusy(SessionPhase phase);
// Persistents and after: an abort is refused (upstream's FINAL_PHASE).
bool IsFinalPhase(SessionPhase phase);
// The wire's v2 UpdatePhase and the v1 phase shown for a session phase (during Applying the
// session refines the v1 phase into DIRECTORY / SYMLINK / REGULAR as it goes).
UpdatePhase WirePhase(SessionPhase phase);
V1Phase DefaultV1Phase(SessionPhase phase);
// The stage whose E-code (common/util/errors.h) a failure in `phase` is reported with.
OtaStage FailureStage(SessionPhase phase);

// What a session needs from the engine that runs it.
struct SessionEnv {
  const EngineOptions& options;
  boot::BootController& boot;
  const FetcherFactory& fetcher_factory;
  ProgressCounters& counters;
  const std::atomic<bool>& cancel;
  // Moves the state machine (checked against TransitionAllowed, logged, timed). Refuses with
  // kCancelled when the engine is stopping or the update was aborted, and the switch is not
  // committed yet (entering CommittingSwitch is refused then too: that is the point of no
  // return); leaving PreparingStandby fires a queued abort (kCancelled). Entering Rebooting is
  // refused (kCancelled) once a stop was requested: the caller then does not reboot.
  std::function<absl::Status(SessionPhase)> enter;
  std::function<void(V1Phase)> set_v1_phase;
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
