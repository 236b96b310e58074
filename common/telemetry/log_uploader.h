// Fleet log upload: a log::Sink that queues every log line and metrics record of this process
// and sends them to the fleet's logging server (otaclient-iot-logging-server) on one thread of
// its own. Nothing that logs ever waits for the server: Consume() formats the record and queues
// it under a short lock; the network is only touched by the uploader thread.
//
// Connection (as the deployed client): the thread waits until the server's HTTP endpoint answers
// (a POST with an empty body, probed every second), then uses gRPC if Check answers within 3 s,
// else HTTP. Unlike the deployed client it does not stop there: when the server becomes
// unreachable (connection refused or reset) it goes back to waiting, and chooses the transport
// again once the server answers, so a restarted or reconfigured server is picked up.
//
// Sending: records go in arrival order, taken from the queue up to `batch` at a time and sent
// back to back, one call after the other (gRPC: PutLog calls on one channel; HTTP: POSTs on one
// keep-alive connection; both APIs take one record per call, and the server stamps the arrival
// time, so calls are never in flight together). Each call has the deployed client's 3 s
// deadline. Per record:
//   delivered, or refused for good (400, NOT_ALLOWED_ECU_ID, NO_MESSAGE) → done;
//   no answer within the deadline → done too (it may have arrived: resending would feed a slow
//     server duplicates and never drain the queue) and counted as unconfirmed;
//   server queue full (SERVER_QUEUE_FULL, HTTP 503) → kept, retried after a backoff
//     (200 ms doubling to 5 s);
//   connection lost → kept, the thread waits for the server again.
//
// Bounded memory: at most `max_records` log records and `max_bytes` of their text (2048 and
// 1 MiB by default; a line's text is cut at 16 KiB). When full, the OLDEST log record is dropped:
// during a long outage the queue keeps the most recent window (how the story ends: failure
// reasons, the session's end), and what was dropped is counted and reported in a WARNING line
// ("log upload: records dropped", with the count) that is itself uploaded once records flow
// again. Metrics records have a queue of their own (`max_metrics`, 16), so a flood of log lines
// never pushes out a session's metrics.
//
// Shutdown: Stop(drain) keeps sending for at most `drain` while records are queued and the server
// takes them, then interrupts any call in flight; what is left is dropped (the stderr copy of
// every line is in the journal anyway). The destructor stops without draining.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/log/log.h"
#include "common/telemetry/upload_transport.h"

namespace ota::telemetry {

struct LogUploaderOptions {
  size_t max_records = 2048;         // log records queued (the deployed client's backlog)
  size_t max_bytes = 1 << 20;        // their text
  size_t max_text_bytes = 16 << 10;  // a longer log line's text is cut (upload_line.h)
  size_t max_metrics = 16;           // metrics records queued
  size_t batch = 8;                  // records taken from the queue per Send
  std::chrono::milliseconds probe_interval{1000};
  std::chrono::milliseconds min_backoff{200};
  std::chrono::milliseconds max_backoff{5000};
};

class LogUploader final : public log::Sink {
 public:
  // Starts the uploader thread.
  explicit LogUploader(std::unique_ptr<UploadConnector> connector, LogUploaderOptions options = {});
  ~LogUploader() override;
  LogUploader(const LogUploader&) = delete;
  LogUploader& operator=(const LogUploader&) = delete;

  // log::Sink: formats and queues the record; never blocks on the network.
  void Consume(const log::Record& record) override;

  // Waits until every record queued before the call is sent (or dropped), at most `timeout`.
  // Returns at once (false) when the server is not connected: nothing would come of waiting.
  // True when everything was handled. (Before a reboot: the deployed client sleeps 6 s there.)
  bool Flush(std::chrono::milliseconds timeout);

  // Stops the thread after at most `drain` of sending (see above). Idempotent; not to be called
  // from two threads at once.
  void Stop(std::chrono::milliseconds drain);

  struct Stats {
    uint64_t accepted = 0;     // records queued
    uint64_t delivered = 0;    // taken by the server
    uint64_t rejected = 0;     // refused for good
    uint64_t unconfirmed = 0;  // no answer within the deadline
    uint64_t dropped = 0;      // dropped from a full queue, or left at Stop
    size_t queued = 0;         // records waiting (log + metrics)
    size_t queued_bytes = 0;   // their text
    bool connected = false;
    std::string transport;  // "grpc", "http" or "" (not connected)
  };
  Stats GetStats() const;

 private:
  using Clock = std::chrono::steady_clock;
  struct Applied {
    bool delivered_any = false;
    bool busy = false;
    bool unreachable = false;
    bool rejected_any = false;
  };

  void Run();
  // Blocks until records are queued or a stop is requested; returns up to `batch` copies in
  // arrival order, or none when the thread should end.
  std::vector<UploadRecord> TakeBatch();
  Applied Apply(const std::vector<UploadRecord>& batch, const std::vector<SendResult>& results);
  // Waits `duration` unless a stop is requested.
  void Pause(std::chrono::milliseconds duration);
  void SetConnected(std::string_view transport);
  bool StopRequested();
  uint64_t OldestQueuedSeqLocked() const;
  void EraseLocked(uint64_t seq, log::RecordType type);

  const std::unique_ptr<UploadConnector> connector_;
  const LogUploaderOptions options_;

  mutable std::mutex mu_;
  // Records queued, records handled, the connection changed, a stop requested.
  std::condition_variable cv_;
  std::deque<UploadRecord> logs_;     // guarded by mu_
  size_t log_bytes_ = 0;              // guarded by mu_
  std::deque<UploadRecord> metrics_;  // guarded by mu_
  uint64_t next_seq_ = 1;             // guarded by mu_
  Stats stats_;                       // guarded by mu_ (queued/queued_bytes filled on read)
  uint64_t dropped_unreported_ = 0;   // guarded by mu_
  bool stopping_ = false;             // guarded by mu_
  Clock::time_point drain_deadline_;  // guarded by mu_
  bool thread_done_ = false;          // guarded by mu_
  bool stopped_ = false;              // Stop() ran (the caller's thread only)
  // Interrupts the transport's calls, the probe and the Check (Stop, after the drain).
  std::atomic<bool> cancel_{false};
  std::thread thread_;  // last: started when everything above exists
};

}  // namespace ota::telemetry
