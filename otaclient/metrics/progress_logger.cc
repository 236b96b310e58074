#include "otaclient/metrics/progress_logger.h"

#include <ctime>
#include <utility>

#include "common/log/log.h"
#include "common/util/strings.h"
#include "proto/otaclient_v2.pb.h"

namespace ota::metrics {

void LogProgress(const update::StatusSnapshot& snapshot, uint64_t now_unix_s) {
  const update::Progress& p = snapshot.progress;
  const uint64_t elapsed =
      now_unix_s > p.update_start_timestamp ? now_unix_s - p.update_start_timestamp : 0;
  // UpdatePhase values equal the wire's (status_snapshot.h).
  std::string phase = OtaClientV2::UpdatePhase_Name(static_cast<OtaClientV2::UpdatePhase>(p.phase));
  if (phase.empty()) phase = StrCat(static_cast<int>(p.phase));
  log::Info("update progress",
            {{"phase", phase},
             {"version", p.update_firmware_version},
             {"elapsed_s", StrCat(elapsed)},
             {"files", StrCat(p.processed_files_num, "/", p.total_files_num)},
             {"download_files", StrCat(p.downloaded_files_num, "/", p.total_download_files_num)},
             {"downloaded_bytes", StrCat(p.downloaded_bytes)},
             {"download_errors", StrCat(p.downloading_errors)}});
}

ProgressLogger::ProgressLogger(SnapshotFn snapshot, std::chrono::milliseconds interval)
    : snapshot_(std::move(snapshot)), interval_(interval), thread_([this] { Run(); }) {}

ProgressLogger::~ProgressLogger() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void ProgressLogger::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (cv_.wait_for(lock, interval_, [this] { return stop_; })) return;
    lock.unlock();
    const update::StatusSnapshot snapshot = snapshot_();
    if (snapshot.status == update::OtaStatus::kUpdating) {
      LogProgress(snapshot, static_cast<uint64_t>(std::time(nullptr)));
    }
    lock.lock();
  }
}

}  // namespace ota::metrics
