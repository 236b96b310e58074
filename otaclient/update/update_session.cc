#include "otaclient/update/update_session.h"

#include <sys/stat.h>

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/crypto/sha256.h"
#include "common/fs/rooted.h"
#include "common/http/fetcher.h"
#include "common/image/image_reader.h"
#include "common/image/url.h"
#include "common/log/log.h"
#include "common/util/errors.h"
#include "common/util/strings.h"
#include "otaclient/update/content_index.h"
#include "otaclient/update/delta_planner.h"
#include "otaclient/update/image_platform.h"
#include "otaclient/update/in_place.h"
#include "otaclient/update/install_hooks.h"
#include "otaclient/update/persistents.h"
#include "otaclient/update/slot_table.h"
#include "otaclient/update/slot_writer.h"
#include "otaclient/update/verified_image.h"

namespace ota::update {
namespace {

using P = SessionPhase;

// The only transitions there are. Anything else is a bug.
constexpr std::pair<P, P> kTransitions[] = {
    {P::kIdle, P::kValidatingRequest},
    {P::kFailed, P::kValidatingRequest},
    {P::kValidatingRequest, P::kIdle},    // request rejected: back where we were
    {P::kValidatingRequest, P::kFailed},  // request rejected after a failed update
    {P::kValidatingRequest, P::kProcessingMetadata},
    {P::kProcessingMetadata, P::kPreparingStandby},
    {P::kPreparingStandby, P::kCalculatingDelta},
    {P::kCalculatingDelta, P::kDownloading},
    {P::kDownloading, P::kApplying},
    {P::kApplying, P::kPersistents},
    {P::kPersistents, P::kPostUpdate},
    {P::kPostUpdate, P::kCommittingSwitch},  // the point of no return: no abort from here on
    {P::kCommittingSwitch, P::kRebooting},
    {P::kCommittingSwitch, P::kCommitted},
    {P::kRebooting, P::kCommitted},  // Reboot() returned: a test backend, or it failed
    {P::kProcessingMetadata, P::kFailed},
    {P::kPreparingStandby, P::kFailed},
    {P::kCalculatingDelta, P::kFailed},
    {P::kDownloading, P::kFailed},
    {P::kApplying, P::kFailed},
    {P::kPersistents, P::kFailed},
    {P::kPostUpdate, P::kFailed},
    {P::kCommittingSwitch, P::kFailed},  // CommitSwitch failed
    // Abort: the same phases as Failed, and a request aborted before its thread started.
    {P::kAborted, P::kValidatingRequest},
    {P::kValidatingRequest, P::kAborted},  // rejected after an aborted update, or aborted early
    {P::kProcessingMetadata, P::kAborted},
    {P::kPreparingStandby, P::kAborted},
    {P::kCalculatingDelta, P::kAborted},
    {P::kDownloading, P::kAborted},
    {P::kApplying, P::kAborted},  // the last abortable phase: the final phase follows
    // Rollback.
    {P::kIdle, P::kCheckingRollback},
    {P::kFailed, P::kCheckingRollback},
    {P::kAborted, P::kCheckingRollback},
    {P::kCheckingRollback, P::kIdle},     // refused while the caller waited: back where we were
    {P::kCheckingRollback, P::kAborted},  // (idem)
    {P::kCheckingRollback, P::kFailed},   // refused: back to Failed, or after the ack
                                          // ROLLBACK_FAILURE
    {P::kCheckingRollback, P::kRollingBack},
    {P::kRollingBack, P::kRebooting},
    {P::kRollingBack, P::kCommitted},
    {P::kRollingBack, P::kFailed},  // CommitRollback failed
};

bool IsUnder(std::string_view path, std::string_view top) {
  return path.substr(0, top.size()) == top &&
         (path.size() == top.size() || path[top.size()] == '/');
}

// The resources and download dirs are ours; an image may not put anything there.
absl::Status CheckReservedPaths(const image::Manifest& m) {
  auto check = [&](image::StrRef ref, std::string_view kind) -> absl::Status {
    for (std::string_view top : {kResourcesPath, kDownloadPath, kMetaPath}) {
      if (!IsUnder(m.Str(ref), top)) continue;
      return absl::InvalidArgumentError(StrCat("image ", kind, " '", m.Str(ref), "' is under ", top,
                                               ", which the updater reserves"));
    }
    return absl::OkStatus();
  };
  for (const auto& d : m.dirs) OTA_RETURN_IF_ERROR(check(d.path, "directory"));
  for (const auto& l : m.symlinks) OTA_RETURN_IF_ERROR(check(l.path, "symlink"));
  for (const auto& x : m.specials) OTA_RETURN_IF_ERROR(check(x.path, "special file"));
  for (const auto& r : m.regulars) OTA_RETURN_IF_ERROR(check(r.path, "regular file"));
  for (const auto& p : m.persistents) OTA_RETURN_IF_ERROR(check(p, "persistent path"));
  return absl::OkStatus();
}

// Hands every missing content to the image's content source, which makes each appear verified
// in the resources dir (the source knows the format: blobs, bundles, slices, compression).
absl::Status DownloadMissing(http::Fetcher& fetcher, image::Image& img, const ContentIndex& index,
                             const std::vector<uint32_t>& missing,
                             const std::filesystem::path& standby_root, const SessionEnv& env,
                             std::vector<uint8_t>& downloaded) {
  std::vector<image::ContentRequest> requests;
  requests.reserve(missing.size());
  for (uint32_t slot : missing) {
    const NeededContent& c = index[slot];
    image::ContentRequest r;
    r.sha256 = c.sha256;
    if (c.size_known) r.size = c.size;
    r.entry = c.first_entry;
    requests.push_back(r);
  }
  ProgressCounters& counters = env.counters;
  image::ContentFetchEnv fetch_env;
  fetch_env.fetcher = &fetcher;
  fetch_env.resources_dir = standby_root / std::string(kResourcesDir);
  fetch_env.work_dir = standby_root / std::string(kDownloadDir);
  fetch_env.cancel = &env.cancel;
  fetch_env.observer.on_bytes = [&counters](uint64_t bytes) {
    counters.downloaded_bytes.fetch_add(bytes, std::memory_order_relaxed);
  };
  fetch_env.on_content = [&](size_t k, uint64_t bytes, uint32_t retries) {
    downloaded[missing[k]] = 1;
    counters.downloaded_files_num.fetch_add(1, std::memory_order_relaxed);
    counters.downloaded_files_size.fetch_add(bytes, std::memory_order_relaxed);
    counters.downloading_errors.fetch_add(retries, std::memory_order_relaxed);
  };
  OTA_RETURN_IF_ERROR(img.source->Fetch(img.manifest, requests, fetch_env));
  if (env.cancel.load()) return absl::CancelledError("update cancelled during download");
  for (uint32_t slot : missing) {
    if (downloaded[slot] == 0) {
      return absl::InternalError(
          StrCat("the image source did not deliver ", crypto::ToHex(index[slot].sha256)));
    }
  }
  return absl::OkStatus();
}

void Step(const SessionEnv& env, std::string_view step) {
  if (env.options.test_step_hook) env.options.test_step_hook(step);
}

// Whether `path` is the root of its own file system (a mounted block-device slot; directory
// slots are not): only then is the standby trimmed.
bool IsMountRoot(const std::filesystem::path& path) {
  struct stat here;
  struct stat parent;
  if (::stat(path.c_str(), &here) != 0 || ::stat((path / "..").c_str(), &parent) != 0) {
    return false;
  }
  return here.st_dev != parent.st_dev;
}

absl::Status RunSteps(const UpdateRequestParams& request, const SessionEnv& env,
                      bool& standby_prepared) {
  ProgressCounters& counters = env.counters;
  // Per-step wall time, logged at the end (where an update's time goes).
  std::vector<std::pair<std::string_view, int64_t>> laps;
  auto lap_start = std::chrono::steady_clock::now();
  auto lap = [&](std::string_view step) {
    const auto now = std::chrono::steady_clock::now();
    laps.emplace_back(
        step, std::chrono::duration_cast<std::chrono::milliseconds>(now - lap_start).count());
    lap_start = now;
  };

  // --- metadata: nothing on disk changes until it is all verified ---
  OTA_RETURN_IF_ERROR(env.enter(P::kProcessingMetadata));
  OTA_ASSIGN_OR_RETURN(auto cookies, http::ParseCookiesJson(request.cookies_json));
  http::FetcherConfig fetcher_config = env.options.fetcher;
  fetcher_config.cookies = std::move(cookies);
  fetcher_config.cancel = &env.cancel;  // metadata and list fetches stop on abort too
  std::unique_ptr<http::Fetcher> fetcher = env.fetcher_factory(fetcher_config);
  if (fetcher == nullptr) return absl::InternalError("fetcher factory returned no fetcher");
  // No usable CA store: no image can be trusted, refused before anything is fetched (E309, like
  // upstream).
  const ImageTrust trust{env.options.certs_dir, env.options.allow_unverified_dev,
                         env.options.ecu_id, env.options.release_key, ""};
  OTA_ASSIGN_OR_RETURN(image::Image loaded,
                       OpenVerifiedImage(*fetcher, request.url, trust, "update"));
  image::Image& img = loaded;
  lap("metadata_ms");
  OTA_RETURN_IF_ERROR(CheckReservedPaths(img.manifest));
  OTA_ASSIGN_OR_RETURN(ContentIndex index, ContentIndex::Build(img.manifest));
  counters.total_files_num = img.manifest.regulars.size();
  counters.total_files_size = index.total_file_bytes() == 0 && img.total_regular_size
                                  ? *img.total_regular_size
                                  : index.total_file_bytes();
  counters.total_directories_num = img.manifest.dirs.size();
  counters.total_symlinks_num = img.manifest.symlinks.size();
  counters.image_format = OtaImageFormat::kLegacy;
  log::Info("image verified", {{"url", request.url},
                               {"format", std::string(image::ImageFormatName(img.format))},
                               {"dirs", StrCat(img.manifest.dirs.size())},
                               {"symlinks", StrCat(img.manifest.symlinks.size())},
                               {"regulars", StrCat(img.manifest.regulars.size())},
                               {"contents", StrCat(index.size())}});

  // --- what the boot backend says about this image (Jetson UEFI's BSP guard) ---
  if (env.boot.WantsImagePlatformInfo()) {
    OTA_ASSIGN_OR_RETURN(boot::ImagePlatformInfo platform,
                         ReadImagePlatformInfo(*fetcher, img, env.cancel));
    OTA_RETURN_IF_ERROR(env.boot.CheckImageCompatible(platform));
  }
  env.boot.SetStandbyRelease({request.release_name, request.release_id, request.image_id});

  // --- the standby: from here on it is unbootable until CommitSwitch ---
  // The critical part: an abort arriving now is queued and fires when the phase is left.
  lap("content_index_ms");
  OTA_RETURN_IF_ERROR(env.enter(P::kPreparingStandby));
  constexpr std::string_view kKeep[] = {kResourcesPath, kDownloadPath};
  const StandbyModeSetting mode_setting = env.options.standby_mode;
  boot::PreparedStandby prepared;
  if (mode_setting == StandbyModeSetting::kRebuild) {
    absl::StatusOr<std::filesystem::path> root = env.boot.PrepareStandby(request.version, kKeep);
    if (!root.ok()) return root.status();
    prepared.root = *std::move(root);
    prepared.reason = "rebuild requested";
  } else {
    absl::StatusOr<boot::PreparedStandby> kept =
        env.boot.PrepareStandbyInPlace(request.version, kKeep);
    if (!kept.ok()) return kept.status();
    prepared = *std::move(kept);
  }
  standby_prepared = true;
  const std::filesystem::path standby_root = prepared.root;
  OTA_ASSIGN_OR_RETURN(fs::RootedDir standby, fs::RootedDir::Open(standby_root));
  // In place or rebuild: decided from the file system (the backend) and the slot's own record
  // of what was written there, before anything of it is changed.
  StandbyFacts facts;
  facts.filesystem_fit = prepared.contents_kept;
  facts.filesystem_reason = prepared.reason;
  SlotRecord record;
  if (prepared.contents_kept) {
    record = ReadSlotRecord(standby);
    facts.table = record.state;
  }
  const StandbyDecision decision = DecideStandbyMode(mode_setting, facts);
  log::Info("standby write mode decided",
            {{"mode", decision.in_place ? "in-place" : "rebuild"},
             {"setting", std::string(StandbyModeSettingName(mode_setting))},
             {"reason", decision.reason},
             {"slot_table", std::string(SlotTableStateName(facts.table))},
             {"slot_table_problem", record.problem}});
  counters.in_place = decision.in_place;
  if (decision.in_place) {
    // Before the first change: a crash from here on leaves "writing", so the next update
    // re-verifies every file instead of trusting the table.
    OTA_RETURN_IF_ERROR(MarkSlotWriting(standby));
  } else if (prepared.contents_kept) {
    // The backend kept the contents for us; a rebuild starts from an empty slot.
    constexpr std::string_view kKeepOnRebuild[] = {kResourcesPath, kDownloadPath, "lost+found"};
    OTA_RETURN_IF_ERROR(WithContext(standby.RemoveTreeExcept(kKeepOnRebuild),
                                    StrCat("cleaning standby ", standby_root.string())));
  }
  // Install hooks see the standby mounted; pre-install runs before anything of the image is
  // written into it (after a rebuild's cleaning, or once an in-place update marked it writing).
  const InstallHookEnv hook_env{.target_root = standby_root,
                                .active_root = env.boot.ActiveRoot(),
                                .target_version = request.version,
                                .image_url = request.url,
                                .ecu_id = env.options.ecu_id};
  OTA_RETURN_IF_ERROR(RunInstallHook(env.options.install_hooks_dir, kPreInstallHook, hook_env,
                                     env.options.install_hook_timeout));
  lap("prepare_standby_ms");
  Step(env, "standby:decided");
  OTA_RETURN_IF_ERROR(env.enter(P::kCalculatingDelta));  // a queued abort fires here
  OTA_ASSIGN_OR_RETURN(fs::RootedDir active, fs::RootedDir::Open(env.boot.ActiveRoot()));

  InPlacePlan plan;
  if (decision.in_place) {
    InPlaceOptions in_place_options;
    in_place_options.trusted_table =
        decision.reverify || !record.table.has_value() ? nullptr : &*record.table;
    in_place_options.hash_threads = kHashThreads;
    in_place_options.cancel = &env.cancel;
    OTA_ASSIGN_OR_RETURN(plan, PlanInPlace(img.manifest, standby, in_place_options, counters));
    lap("in_place_plan_ms");
    // Only what is not already right needs content.
    OTA_ASSIGN_OR_RETURN(index, ContentIndex::Build(img.manifest, plan.keep_regulars));
  }
  DeltaOptions delta_options;
  delta_options.hash_threads = kHashThreads;
  delta_options.cancel = &env.cancel;
  delta_options.standby_sources = plan.sources;
  OTA_ASSIGN_OR_RETURN(DeltaResult delta,
                       PlanDelta(index, active, standby, delta_options, counters));
  lap("delta_ms");
  counters.total_download_files_num = delta.missing.size();
  counters.total_download_files_size = delta.missing_bytes;

  OTA_RETURN_IF_ERROR(env.enter(P::kDownloading));
  std::vector<uint8_t> downloaded(index.size(), 0);
  OTA_RETURN_IF_ERROR(
      DownloadMissing(*fetcher, img, index, delta.missing, standby_root, env, downloaded));
  fetcher.reset();  // drop connections before the long local phases
  lap("download_ms");

  OTA_RETURN_IF_ERROR(env.enter(P::kApplying));
  if (decision.in_place) {
    // Stale entries go first (a file where the image has a directory, and the reverse).
    OTA_RETURN_IF_ERROR(ApplyInPlaceFixups(img.manifest, plan, standby, counters));
    lap("in_place_fixups_ms");
    Step(env, "inplace:removed");
  }
  env.set_v1_phase(V1Phase::kDirectory);
  OTA_RETURN_IF_ERROR(ApplyDirectories(img.manifest, standby));
  env.set_v1_phase(V1Phase::kSymlink);
  OTA_RETURN_IF_ERROR(ApplySymlinks(img.manifest, standby, plan.keep_symlinks));
  OTA_RETURN_IF_ERROR(ApplySpecials(img.manifest, standby, plan.keep_specials));
  lap("apply_dirs_links_ms");
  Step(env, "apply:symlinks");
  env.set_v1_phase(V1Phase::kRegular);
  ApplyOptions apply_options;
  apply_options.threads = kApplyThreads;
  apply_options.cancel = &env.cancel;
  apply_options.skip_regulars = plan.keep_regulars;
  OTA_RETURN_IF_ERROR(
      ApplyRegulars(img.manifest, index, downloaded, standby, apply_options, counters));
  lap("apply_regulars_ms");
  Step(env, "apply:regulars");
  // What the image's files look like now, before persistent files (which the next update then
  // finds changed and rehashes) and the backend's boot files. An in-place update that trusted
  // the earlier table for most files keeps it (slot_table.h MarkSlotComplete).
  const size_t regulars = img.manifest.regulars.size();
  const bool keep_table = decision.in_place && !decision.reverify && record.table.has_value() &&
                          (regulars - plan.table_hits) * kTableRewriteShare <= regulars;
  std::optional<SlotTable> table;
  if (!keep_table) {
    OTA_ASSIGN_OR_RETURN(table, RecordSlotTable(img.manifest, standby, kApplyThreads));
  }

  lap("record_table_ms");
  OTA_RETURN_IF_ERROR(env.enter(P::kPersistents));
  OTA_RETURN_IF_ERROR(CopyPersistents(img.manifest, active, standby));

  lap("persistents_ms");
  OTA_RETURN_IF_ERROR(env.enter(P::kPostUpdate));
  OTA_RETURN_IF_ERROR(standby.RemoveAll(kResourcesDir));
  OTA_RETURN_IF_ERROR(standby.RemoveAll(kDownloadDir));
  // Everything is written; what post-install changes is synced with the rest.
  OTA_RETURN_IF_ERROR(RunInstallHook(env.options.install_hooks_dir, kPostInstallHook, hook_env,
                                     env.options.install_hook_timeout));
  lap("post_install_ms");
  if (decision.in_place && IsMountRoot(standby_root)) TrimStandby(standby_root);
  lap("trim_ms");
  OTA_RETURN_IF_ERROR(standby.SyncFs());
  lap("syncfs_ms");
  Step(env, "post:synced");
  if (table.has_value()) {
    OTA_RETURN_IF_ERROR(WriteSlotRecordComplete(standby, *table));
  } else {
    OTA_RETURN_IF_ERROR(MarkSlotComplete(standby));
  }
  log::Info("standby record written", {{"slot_table", table.has_value() ? "rewritten" : "kept"},
                                       {"entries", StrCat(table ? table->size() : 0)}});
  lap("record_write_ms");
  {
    std::string text;
    for (const auto& [step, ms] : laps) text += StrCat(text.empty() ? "" : " ", step, "=", ms);
    log::Info("update steps timed", {{"ms", text}});
  }
  Step(env, "post:recorded");
  {
    // CommitSwitch unmounts the standby on block-device backends: no fd of ours may keep it busy.
    fs::RootedDir release_standby = std::move(standby);
    fs::RootedDir release_active = std::move(active);
  }
  // The point of no return: kCancelled when an abort was requested; from here on Abort() is
  // refused.
  OTA_RETURN_IF_ERROR(env.enter(P::kCommittingSwitch));
  OTA_RETURN_IF_ERROR(env.boot.CommitSwitch());
  standby_prepared = false;  // committed: no longer ours to mark failed

  // Past the point of no return: nothing below may fail the update.
  if (env.options.reboot_after_update) {
    if (env.options.before_reboot) env.options.before_reboot();
    // Refused when a stop was requested meanwhile (SIGTERM): then no reboot.
    if (absl::Status rebooting = env.enter(P::kRebooting); !rebooting.ok()) {
      log::Info("not rebooting", {{"reason", std::string(rebooting.message())}});
    } else if (absl::Status rebooted = env.boot.Reboot(); !rebooted.ok()) {
      log::Error("reboot failed; the new slot boots on the next restart",
                 {{"error", std::string(rebooted.message())}});
    }
  }
  (void)env.enter(P::kCommitted);
  return absl::OkStatus();
}

}  // namespace

std::string_view SessionPhaseName(SessionPhase phase) {
  switch (phase) {
    case P::kIdle:
      return "Idle";
    case P::kValidatingRequest:
      return "ValidatingRequest";
    case P::kProcessingMetadata:
      return "ProcessingMetadata";
    case P::kPreparingStandby:
      return "PreparingStandby";
    case P::kCalculatingDelta:
      return "CalculatingDelta";
    case P::kDownloading:
      return "Downloading";
    case P::kApplying:
      return "Applying";
    case P::kPersistents:
      return "Persistents";
    case P::kPostUpdate:
      return "PostUpdate";
    case P::kCommittingSwitch:
      return "CommittingSwitch";
    case P::kRebooting:
      return "Rebooting";
    case P::kCommitted:
      return "Committed";
    case P::kFailed:
      return "Failed";
    case P::kAborted:
      return "Aborted";
    case P::kCheckingRollback:
      return "CheckingRollback";
    case P::kRollingBack:
      return "RollingBack";
    case P::kCount:
      break;
  }
  return "Unknown";
}

bool TransitionAllowed(SessionPhase from, SessionPhase to) {
  if (from == to || from == P::kCount || to == P::kCount) return false;
  for (const auto& [f, t] : kTransitions) {
    if (f == from && t == to) return true;
  }
  return false;
}

bool IsFinalPhase(SessionPhase phase) {
  return phase == P::kPersistents || phase == P::kPostUpdate || phase == P::kCommittingSwitch ||
         phase == P::kRebooting || phase == P::kCommitted;
}

bool IsBusy(SessionPhase phase) {
  return phase != P::kIdle && phase != P::kFailed && phase != P::kAborted && phase != P::kCount;
}

UpdatePhase WirePhase(SessionPhase phase) {
  switch (phase) {
    case P::kIdle:
    case P::kValidatingRequest:
      return UpdatePhase::kInitializing;
    case P::kProcessingMetadata:
    case P::kPreparingStandby:
      return UpdatePhase::kProcessingMetadata;
    case P::kCalculatingDelta:
      return UpdatePhase::kCalculatingDelta;
    case P::kDownloading:
      return UpdatePhase::kDownloadingOtaFiles;
    case P::kApplying:
      return UpdatePhase::kApplyingUpdate;
    case P::kPersistents:
    case P::kPostUpdate:
    case P::kCommittingSwitch:
      return UpdatePhase::kProcessingPostupdate;
    case P::kRebooting:
    case P::kCommitted:
    case P::kFailed:
    case P::kAborted:
    case P::kCheckingRollback:
    case P::kRollingBack:
      return UpdatePhase::kFinalizingUpdate;
    case P::kCount:
      break;
  }
  return UpdatePhase::kInitializing;
}

OtaStage FailureStage(SessionPhase phase) {
  switch (phase) {
    case P::kIdle:
    case P::kValidatingRequest:
    case P::kProcessingMetadata:
      return OtaStage::kMetadata;
    case P::kPreparingStandby:
      return OtaStage::kPrepareStandby;
    case P::kCalculatingDelta:
      return OtaStage::kDelta;
    case P::kDownloading:
      return OtaStage::kDownload;
    case P::kCommittingSwitch:
      return OtaStage::kCommitSwitch;
    case P::kCheckingRollback:
      return OtaStage::kRollbackCheck;
    case P::kRollingBack:
      return OtaStage::kRollbackCommit;
    case P::kApplying:
    case P::kPersistents:
    case P::kPostUpdate:
    case P::kRebooting:
    case P::kCommitted:
    case P::kFailed:
    case P::kAborted:
    case P::kCount:
      break;
  }
  return OtaStage::kApply;
}

V1Phase DefaultV1Phase(SessionPhase phase) {
  switch (phase) {
    case P::kIdle:
    case P::kValidatingRequest:
      return V1Phase::kInitial;
    case P::kProcessingMetadata:
    case P::kPreparingStandby:
      return V1Phase::kMetadata;
    // Regular-file content is gathered here; DIRECTORY and SYMLINK follow inside Applying.
    case P::kCalculatingDelta:
    case P::kDownloading:
      return V1Phase::kRegular;
    case P::kApplying:
      return V1Phase::kDirectory;
    case P::kPersistents:
      return V1Phase::kPersistent;
    case P::kPostUpdate:
    case P::kCommittingSwitch:
    case P::kRebooting:
    case P::kCommitted:
    case P::kFailed:
    case P::kAborted:
    case P::kCheckingRollback:
    case P::kRollingBack:
      return V1Phase::kPostProcessing;
    case P::kCount:
      break;
  }
  return V1Phase::kInitial;
}

absl::Status RunUpdateSession(const UpdateRequestParams& request, const SessionEnv& env) {
  bool standby_prepared = false;
  absl::Status status = RunSteps(request, env, standby_prepared);
  if (!status.ok() && standby_prepared) {
    const boot::SlotStatus outcome =
        env.abort_requested() ? boot::SlotStatus::kAborted : boot::SlotStatus::kFailure;
    absl::Status marked = env.boot.OnUpdateFailed(outcome);
    if (!marked.ok()) {
      log::Error(
          "could not mark the standby unbootable",
          {{"status", boot::SlotStatusName(outcome)}, {"error", std::string(marked.message())}});
    }
  }
  return status;
}

}  // namespace ota::update
