#include "common/telemetry/log_uploader.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "common/telemetry/upload_line.h"
#include "common/util/strings.h"

namespace ota::telemetry {

std::string_view SendResultName(SendResult result) {
  switch (result) {
    case SendResult::kDelivered:
      return "delivered";
    case SendResult::kRejected:
      return "rejected";
    case SendResult::kUnconfirmed:
      return "unconfirmed";
    case SendResult::kBusy:
      return "busy";
    case SendResult::kUnreachable:
      return "unreachable";
  }
  return "unknown";
}

LogUploader::LogUploader(std::unique_ptr<UploadConnector> connector, LogUploaderOptions options)
    : connector_(std::move(connector)), options_(options), thread_([this] { Run(); }) {}

LogUploader::~LogUploader() { Stop(std::chrono::milliseconds(0)); }

void LogUploader::Consume(const log::Record& record) {
  UploadRecord queued;
  queued.type = record.type;
  queued.level = record.level;
  queued.message = record.type == log::RecordType::kMetrics
                       ? std::string(record.text)
                       : FormatUploadLine(record, options_.max_text_bytes);
  if (queued.message.empty()) return;  // the server refuses empty messages
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;  // nobody sends it any more; stderr has the line
    queued.seq = next_seq_++;
    ++stats_.accepted;
    if (queued.type == log::RecordType::kMetrics) {
      metrics_.push_back(std::move(queued));
      while (metrics_.size() > options_.max_metrics) {
        metrics_.pop_front();
        ++stats_.dropped;
        ++dropped_unreported_;
      }
    } else {
      log_bytes_ += queued.message.size();
      logs_.push_back(std::move(queued));
      // Drop the oldest: the most recent window survives an outage (see the header).
      while (!logs_.empty() &&
             (logs_.size() > options_.max_records || log_bytes_ > options_.max_bytes)) {
        log_bytes_ -= logs_.front().message.size();
        logs_.pop_front();
        ++stats_.dropped;
        ++dropped_unreported_;
      }
    }
  }
  cv_.notify_all();
}

uint64_t LogUploader::OldestQueuedSeqLocked() const {
  uint64_t oldest = std::numeric_limits<uint64_t>::max();
  if (!logs_.empty()) oldest = std::min(oldest, logs_.front().seq);
  if (!metrics_.empty()) oldest = std::min(oldest, metrics_.front().seq);
  return oldest;
}

bool LogUploader::Flush(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t target = next_seq_ - 1;
  auto all_handled = [&] { return OldestQueuedSeqLocked() > target; };
  cv_.wait_for(lock, timeout,
               [&] { return all_handled() || !stats_.connected || thread_done_ || stopping_; });
  return all_handled();
}

void LogUploader::Stop(std::chrono::milliseconds drain) {
  if (stopped_) return;
  stopped_ = true;
  {
    std::unique_lock<std::mutex> lock(mu_);
    stopping_ = true;
    drain_deadline_ = Clock::now() + drain;
    cv_.notify_all();
    cv_.wait_until(lock, drain_deadline_, [&] { return thread_done_; });
    // Interrupts a call, probe or Check in flight (under mu_: Pause() checks it there).
    cancel_.store(true);
  }
  cv_.notify_all();
  thread_.join();
}

LogUploader::Stats LogUploader::GetStats() const {
  std::lock_guard<std::mutex> lock(mu_);
  Stats out = stats_;
  out.queued = logs_.size() + metrics_.size();
  out.queued_bytes = log_bytes_;
  for (const UploadRecord& r : metrics_) out.queued_bytes += r.message.size();
  return out;
}

bool LogUploader::StopRequested() {
  std::lock_guard<std::mutex> lock(mu_);
  return stopping_;
}

void LogUploader::Pause(std::chrono::milliseconds duration) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, duration, [&] { return stopping_ || cancel_.load(); });
}

void LogUploader::SetConnected(std::string_view transport) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.connected = !transport.empty();
    stats_.transport = std::string(transport);
  }
  cv_.notify_all();  // Flush() stops waiting when the connection is gone
}

std::vector<UploadRecord> LogUploader::TakeBatch() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return !logs_.empty() || !metrics_.empty() || stopping_; });
  const bool empty = logs_.empty() && metrics_.empty();
  if (stopping_ && (empty || Clock::now() >= drain_deadline_)) return {};
  // Merge both queues in arrival order.
  std::vector<UploadRecord> batch;
  auto log_it = logs_.begin();
  auto metrics_it = metrics_.begin();
  while (batch.size() < options_.batch && (log_it != logs_.end() || metrics_it != metrics_.end())) {
    const bool take_metrics =
        metrics_it != metrics_.end() && (log_it == logs_.end() || metrics_it->seq < log_it->seq);
    batch.push_back(take_metrics ? *metrics_it++ : *log_it++);
  }
  return batch;
}

void LogUploader::EraseLocked(uint64_t seq, log::RecordType type) {
  std::deque<UploadRecord>& queue = type == log::RecordType::kMetrics ? metrics_ : logs_;
  const auto it = std::find_if(queue.begin(), queue.end(),
                               [seq](const UploadRecord& r) { return r.seq == seq; });
  if (it == queue.end()) return;  // dropped from a full queue while it was being sent
  if (type == log::RecordType::kLog) log_bytes_ -= it->message.size();
  queue.erase(it);
}

LogUploader::Applied LogUploader::Apply(const std::vector<UploadRecord>& batch,
                                        const std::vector<SendResult>& results) {
  Applied applied;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < batch.size(); ++i) {
      // A transport that answers short did not try the rest (after a deadline, or cancelled):
      // they stay queued, first in line for the next turn.
      if (i >= results.size()) continue;
      switch (results[i]) {
        case SendResult::kDelivered:
          ++stats_.delivered;
          applied.delivered_any = true;
          break;
        case SendResult::kRejected:
          ++stats_.rejected;
          applied.rejected_any = true;
          break;
        case SendResult::kUnconfirmed:
          ++stats_.unconfirmed;
          break;
        case SendResult::kBusy:
          applied.busy = true;
          continue;  // kept for the next try
        case SendResult::kUnreachable:
          applied.unreachable = true;
          continue;  // kept for the next try
      }
      EraseLocked(batch[i].seq, batch[i].type);
    }
  }
  cv_.notify_all();  // Flush() waits for records to be handled
  return applied;
}

void LogUploader::Run() {
  std::unique_ptr<UploadTransport> transport;
  std::chrono::milliseconds backoff = options_.min_backoff;
  bool said_waiting = false;   // "does not answer" logged for this outage
  bool said_rejected = false;  // "refuses records" logged since the last connect
  for (;;) {
    if (transport == nullptr) {
      if (StopRequested()) break;  // no server to drain to
      if (!connector_->ServerAnswers(cancel_)) {
        if (!said_waiting) {
          said_waiting = true;
          log::Info(
              "log upload: the logging server does not answer; records are kept (the newest, "
              "bounded) and sent once it does",
              {{"server", connector_->Describe()}, {"keeps", StrCat(options_.max_records)}});
        }
        Pause(options_.probe_interval);
        continue;
      }
      transport = connector_->Connect(cancel_);
      if (transport == nullptr) {
        Pause(options_.probe_interval);
        continue;
      }
      const std::string name(transport->name());
      // Logged before the stats say "connected": whoever waits for that has seen this line.
      log::Info("log upload: connected", {{"transport", name}, {"server", connector_->Describe()}});
      SetConnected(name);
      said_waiting = false;
      said_rejected = false;
      backoff = options_.min_backoff;
      continue;
    }

    const std::vector<UploadRecord> batch = TakeBatch();
    if (batch.empty()) break;
    const std::vector<SendResult> results = transport->Send(batch);
    const Applied applied = Apply(batch, results);

    uint64_t dropped = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (applied.delivered_any) dropped = std::exchange(dropped_unreported_, 0);
    }
    if (dropped > 0) {
      log::Warning(
          "log upload: records dropped (oldest first) while the logging server was "
          "unreachable or slow and the queue was full",
          {{"dropped", StrCat(dropped)}});
    }
    if (applied.rejected_any && !said_rejected) {
      said_rejected = true;
      log::Warning(
          "log upload: the logging server refused records (is this ecu_id in its "
          "ecu_info?); they are dropped",
          {{"server", connector_->Describe()}});
    }
    if (applied.unreachable) {
      transport.reset();
      SetConnected("");
      if (StopRequested()) break;
      log::Warning("log upload: lost the logging server; waiting for it to answer again",
                   {{"server", connector_->Describe()}});
      continue;
    }
    if (applied.busy) {
      if (StopRequested()) break;  // draining: the server takes nothing now
      Pause(backoff);
      backoff = std::min(backoff * 2, options_.max_backoff);
    } else {
      backoff = options_.min_backoff;
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.dropped += logs_.size() + metrics_.size();
    logs_.clear();
    metrics_.clear();
    log_bytes_ = 0;
    stats_.connected = false;
    stats_.transport.clear();
    thread_done_ = true;
  }
  cv_.notify_all();
}

}  // namespace ota::telemetry
