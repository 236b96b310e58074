// While an update runs, one log line with its progress every interval (60 s in otaclient), as
// the deployed client's status collector logs "ongoing OTA: <status>" every 60 s while UPDATING:
//   INFO update progress phase=DOWNLOADING_OTA_FILES version=v2 elapsed_s=120 files=812/2048
//        download_files=300/1200 downloaded_bytes=123456789 download_errors=0
// The line goes to the journal and, like every line, to the fleet log upload. Nothing is logged
// in any other status (idle, aborting, rollback).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "otaclient/update/status_snapshot.h"

namespace ota::metrics {

// Logs the progress line of `snapshot` (whatever its status).
void LogProgress(const update::StatusSnapshot& snapshot, uint64_t now_unix_s);

class ProgressLogger {
 public:
  using SnapshotFn = std::function<update::StatusSnapshot()>;
  // Starts the thread; `snapshot` is called once per interval from it.
  ProgressLogger(SnapshotFn snapshot, std::chrono::milliseconds interval);
  // Stops and joins the thread (at once: it only waits on a condition variable).
  ~ProgressLogger();
  ProgressLogger(const ProgressLogger&) = delete;
  ProgressLogger& operator=(const ProgressLogger&) = delete;

 private:
  void Run();

  const SnapshotFn snapshot_;
  const std::chrono::milliseconds interval_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;   // guarded by mu_
  std::thread thread_;  // last: started when everything above exists
};

}  // namespace ota::metrics
