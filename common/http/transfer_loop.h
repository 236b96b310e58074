// The fetcher's transfer loop (internal to the curl fetcher): runs tasks, each one resource to
// fetch across all its attempts, over a Session until all are done, the caller stops, or
// cancel. Retries follow retry_policy.h.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/http/body_sink.h"
#include "common/http/curl_easy.h"
#include "common/http/curl_session.h"
#include "common/http/fetcher.h"
#include "common/http/retry_policy.h"

namespace ota::http {

// FetcherConfig::max_download_rate for all transfers of one loop: a token bucket refilled at the
// rate, starting empty (no burst at the start) and holding at most half a second's worth (a loop
// that was not scheduled for a moment catches up, an idle one does not bank more). A transfer
// that finds it empty pauses (its bytes stay with curl) until the loop sees tokens again; the
// debt of the chunk that emptied it is paid before anyone goes on, so the sum over time stays at
// the rate.
class RateBucket {
 public:
  using Clock = std::chrono::steady_clock;
  explicit RateBucket(uint64_t bytes_per_second);
  // Takes `bytes` when the bucket is not empty (it may go into debt by them); false = wait.
  bool Take(uint64_t bytes, Clock::time_point now);
  // Milliseconds until Take() can succeed (0 = now).
  int WaitMs(Clock::time_point now);

 private:
  void Refill(Clock::time_point now);
  const double rate_;      // bytes per second
  const double capacity_;  // bytes
  double tokens_;
  Clock::time_point last_;
};

// One resource to fetch, across all its attempts.
struct Task {
  uint64_t tag = 0;
  std::string url;  // as requested (https→http when proxied); named in every message
  // Ota-File-Cache-Control directives, before and after a content mismatch (empty = no header).
  std::string cache_control;
  std::string cache_control_after_mismatch;
  // The file_sha256 sent names the decoded content (the protocol's own meaning, legacy blobs and
  // Get): a proxy's echo then also says how the body it sends is compressed. False when it names
  // the transferred body itself (v1 blobs: DownloadJob::body_sha256), whose compression is the
  // job's, whatever the echo says.
  bool echo_tells_compression = true;
  std::unique_ptr<BodySink> sink;
  // Set when the task needs no request at all (empty file): its final status.
  std::optional<absl::Status> precompleted;

  int attempts = 0;
  bool content_mismatch_seen = false;
  Session::Clock::time_point due{};
  uint64_t network_bytes = 0;

  // Byte-range resume (see curl_fetcher.h). The body stream the sink holds: how many body bytes
  // it took, whether the next attempt may ask for the rest (`Range: bytes=<stream_bytes>-`), and
  // the first response's validator for If-Range (a strong ETag, else Last-Modified; "" = none).
  uint64_t stream_bytes = 0;
  bool resume_next = false;
  std::string validator;
  uint64_t resumes = 0;  // attempts that continued a stream with a 206

  // The attempt in flight.
  UniqueEasy easy;
  UniqueSlist headers;
  std::array<char, CURL_ERROR_SIZE> errbuf{};
  absl::Status write_error;
  bool write_error_retryable = false;  // a refused range: retried from byte 0
  const TransferObserver* observer = nullptr;
  RateBucket* bucket = nullptr;    // null = no cap
  bool paused = false;             // by the rate cap
  uint64_t range_start = 0;        // the Range this attempt asked for (0 = none)
  bool head_checked = false;       // the response's status and Content-Range were looked at
  bool stream_may_resume = false;  // this attempt's response can be continued by a Range
  // Of the attempt's final response (after redirects).
  std::string etag;
  std::string last_modified;
  std::string content_range;
  std::string cache_control_echo;  // a proxy's Ota-File-Cache-Control answer
};

// Each turn: fill the free transfer slots (due retries first, then new tasks), let curl act on
// what is ready, hand every finished attempt to its task, and turn again. It never waits while
// a slot could be filled, and never waits at all once nothing is left: a finished transfer's
// slot gets its next request in the same turn, and the call returns as soon as the last
// transfer completes.
class TransferLoop {
 public:
  using Clock = Session::Clock;
  using NextTask = std::function<std::unique_ptr<Task>()>;
  // Gets each finished task with its final status; false stops the loop.
  using OnComplete = std::function<bool(Task&, const absl::Status&)>;

  // `observer` and `cancel` may be null.
  TransferLoop(const FetcherConfig& config, Session& session, const TransferObserver* observer,
               const CancelFlag* cancel);
  ~TransferLoop();
  TransferLoop(const TransferLoop&) = delete;
  TransferLoop& operator=(const TransferLoop&) = delete;

  // OK when every task was handed out and completed or on_complete stopped the loop;
  // kCancelled on cancel; a session failure otherwise.
  absl::Status Run(const NextTask& next_task, const OnComplete& on_complete);

 private:
  int WaitBudgetMs() const;
  bool Cancelled() const;
  absl::Status Stop();
  void AbortAll();
  std::unique_ptr<Task> TakeDueRetry(Clock::time_point now);
  // Starts the next attempt of `task`, or completes it when it cannot start. False = stop.
  bool StartOrFinish(std::unique_ptr<Task> task, const OnComplete& on_complete);
  absl::Status StartAttempt(Task& task);
  AttemptOutcome Classify(Task& task, CURLcode result);
  // Lets transfers paused by the rate cap go on when the bucket has tokens again.
  void UnpauseIfTokens();
  // False = stop.
  bool OnAttemptDone(CURL* easy, CURLcode result, const OnComplete& on_complete);

  const FetcherConfig& config_;
  Session& session_;
  const TransferObserver* observer_;
  const CancelFlag* cancel_;
  size_t max_active_;
  int max_attempts_;
  std::vector<std::unique_ptr<Task>> active_;
  std::vector<std::unique_ptr<Task>> waiting_;
  std::mt19937_64 rng_{std::random_device{}()};  // backoff jitter
  std::unique_ptr<RateBucket> bucket_;           // FetcherConfig::max_download_rate; null = none
  size_t unpause_from_ = 0;                      // round-robin start among paused transfers
};

}  // namespace ota::http
