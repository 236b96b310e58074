// The periodic progress line while an update runs (the deployed client's "ongoing OTA" line):
// logged once per interval while UPDATING, never otherwise, and the thread stops at once.
#include "otaclient/metrics/progress_logger.h"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "common/log/log.h"
#include "gtest/gtest.h"

namespace ota::metrics {
namespace {

using std::chrono::milliseconds;

// Records the lines the logger sees.
class RecordingSink final : public log::Sink {
 public:
  void Consume(const log::Record& record) override {
    std::lock_guard<std::mutex> lock(mu_);
    lines_.emplace_back(record.text);
    cv_.notify_all();
  }
  std::vector<std::string> lines() {
    std::lock_guard<std::mutex> lock(mu_);
    return lines_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> lines_;
};

// The snapshot the logger reads; counts the reads so the test can wait for ticks.
class Source {
 public:
  update::StatusSnapshot Read() {
    std::lock_guard<std::mutex> lock(mu_);
    ++reads_;
    cv_.notify_all();
    return snapshot_;
  }
  void Set(const update::StatusSnapshot& snapshot) {
    std::lock_guard<std::mutex> lock(mu_);
    snapshot_ = snapshot;
  }
  // Waits until `n` more reads than now happened (bounded: a safety net).
  bool WaitReads(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    const int target = reads_ + n;
    return cv_.wait_for(lock, std::chrono::seconds(20), [&] { return reads_ >= target; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  update::StatusSnapshot snapshot_;
  int reads_ = 0;
};

update::StatusSnapshot Updating() {
  update::StatusSnapshot s;
  s.status = update::OtaStatus::kUpdating;
  s.progress.phase = update::UpdatePhase::kDownloadingOtaFiles;
  s.progress.update_firmware_version = "v2 beta";
  s.progress.update_start_timestamp = 1000;
  s.progress.processed_files_num = 12;
  s.progress.total_files_num = 345;
  s.progress.downloaded_files_num = 6;
  s.progress.total_download_files_num = 7;
  s.progress.downloaded_bytes = 8910;
  s.progress.downloading_errors = 2;
  return s;
}

TEST(ProgressLogger, TheLineSaysWhereTheUpdateIs) {
  RecordingSink sink;
  log::ScopedSink installed(&sink);
  LogProgress(Updating(), 1120);
  ASSERT_EQ(sink.lines().size(), 1u);
  EXPECT_EQ(sink.lines()[0],
            "update progress phase=DOWNLOADING_OTA_FILES version=\"v2 beta\" elapsed_s=120 "
            "files=12/345 download_files=6/7 downloaded_bytes=8910 download_errors=2");
}

TEST(ProgressLogger, LogsOncePerIntervalOnlyWhileUpdating) {
  RecordingSink sink;
  log::ScopedSink installed(&sink);
  Source source;
  update::StatusSnapshot idle;
  idle.status = update::OtaStatus::kSuccess;
  source.Set(idle);
  {
    ProgressLogger logger([&] { return source.Read(); }, milliseconds(5));
    ASSERT_TRUE(source.WaitReads(3));
    EXPECT_TRUE(sink.lines().empty());  // idle: nothing
    source.Set(Updating());
    ASSERT_TRUE(source.WaitReads(4));  // at least three reads saw UPDATING
    const size_t while_updating = sink.lines().size();
    EXPECT_GE(while_updating, 3u);
    for (const std::string& line : sink.lines()) {
      EXPECT_TRUE(line.starts_with("update progress phase=DOWNLOADING_OTA_FILES")) << line;
    }
    update::StatusSnapshot aborting = Updating();
    aborting.status = update::OtaStatus::kAborting;
    source.Set(aborting);
    ASSERT_TRUE(source.WaitReads(2));  // the first may have read UPDATING before the Set
    const size_t after = sink.lines().size();
    ASSERT_TRUE(source.WaitReads(3));
    EXPECT_EQ(sink.lines().size(), after);  // no more lines
  }
}

TEST(ProgressLogger, StopsAtOnceWithALongInterval) {
  Source source;
  const auto start = std::chrono::steady_clock::now();
  {
    ProgressLogger logger([&] { return source.Read(); }, std::chrono::hours(1));
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

}  // namespace
}  // namespace ota::metrics
