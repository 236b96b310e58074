#include "common/http/transfer_loop.h"

#include <algorithm>
#include <utility>

#include "common/log/log.h"
#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::http {
namespace {

constexpr char kCacheControlHeader[] = "Ota-File-Cache-Control: ";
// Cancellation and backoff deadlines are checked at least this often while waiting.
constexpr int kMaxPollMs = 100;
// Jobs waiting for a retry hold a temp file; bound how many may wait besides the active ones.
constexpr size_t kWaitingPerSlot = 4;

size_t OnBody(char* data, size_t size, size_t nmemb, void* user) {
  auto* task = static_cast<Task*>(user);
  size_t bytes = size * nmemb;
  task->network_bytes += bytes;
  if (task->observer != nullptr && task->observer->on_bytes) task->observer->on_bytes(bytes);
  long code = 0;
  curl_easy_getinfo(task->easy.get(), CURLINFO_RESPONSE_CODE, &code);
  // Error pages are not content; code 0 is a non-HTTP transfer (file://).
  if (code != 0 && (code < 200 || code > 299)) return bytes;
  absl::Status status = task->sink->Write(data, bytes);
  if (!status.ok()) {
    task->write_error = std::move(status);
    return 0;  // anything but `bytes` makes curl abort with CURLE_WRITE_ERROR
  }
  return bytes;
}

}  // namespace

TransferLoop::TransferLoop(const FetcherConfig& config, Session& session,
                           const TransferObserver* observer, const CancelFlag* cancel)
    : config_(config),
      session_(session),
      observer_(observer),
      cancel_(cancel),
      max_active_(static_cast<size_t>(std::max(config.max_parallel, 1))),
      max_attempts_(std::max(config.max_attempts, 1)) {}

TransferLoop::~TransferLoop() { AbortAll(); }

absl::Status TransferLoop::Run(const NextTask& next_task, const OnComplete& on_complete) {
  bool feeding = true;
  while (true) {
    if (Cancelled()) {
      AbortAll();
      return absl::CancelledError("download cancelled");
    }
    // Fill free transfer slots: due retries first, then new tasks.
    while (active_.size() < max_active_) {
      if (std::unique_ptr<Task> task = TakeDueRetry(Clock::now())) {
        if (!StartOrFinish(std::move(task), on_complete)) return Stop();
        continue;
      }
      if (!feeding || active_.size() + waiting_.size() >= max_active_ * (1 + kWaitingPerSlot)) {
        break;
      }
      std::unique_ptr<Task> task = next_task();
      if (!task) {
        feeding = false;
        break;
      }
      if (!StartOrFinish(std::move(task), on_complete)) return Stop();
    }
    if (active_.empty() && waiting_.empty() && !feeding) return absl::OkStatus();

    absl::Status driven = session_.Drive(WaitBudgetMs());
    if (!driven.ok()) {
      AbortAll();
      return driven;
    }
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(session_.multi(), &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      if (!OnAttemptDone(msg->easy_handle, msg->data.result, on_complete)) return Stop();
    }
  }
}

// How long the session may wait for sockets: until the cancel flag needs another look, or
// until the next retry is due if a slot is free for it.
int TransferLoop::WaitBudgetMs() const {
  int wait_ms = kMaxPollMs;
  if (active_.size() < max_active_ && !waiting_.empty()) {
    Clock::time_point now = Clock::now();
    for (const auto& task : waiting_) {
      auto until = std::chrono::ceil<std::chrono::milliseconds>(task->due - now).count();
      wait_ms = static_cast<int>(std::clamp<int64_t>(until, 0, wait_ms));
    }
  }
  return wait_ms;
}

bool TransferLoop::Cancelled() const {
  return (cancel_ != nullptr && cancel_->load(std::memory_order_relaxed)) ||
         (config_.cancel != nullptr && config_.cancel->load(std::memory_order_relaxed));
}

absl::Status TransferLoop::Stop() {
  AbortAll();
  return absl::OkStatus();
}

void TransferLoop::AbortAll() {
  for (auto& task : active_) {
    curl_multi_remove_handle(session_.multi(), task->easy.get());
    session_.Release(std::move(task->easy));
  }
  active_.clear();  // sinks remove their temp files
  waiting_.clear();
}

std::unique_ptr<Task> TransferLoop::TakeDueRetry(Clock::time_point now) {
  auto best = waiting_.end();
  for (auto it = waiting_.begin(); it != waiting_.end(); ++it) {
    if ((*it)->due <= now && (best == waiting_.end() || (*it)->due < (*best)->due)) best = it;
  }
  if (best == waiting_.end()) return nullptr;
  std::unique_ptr<Task> task = std::move(*best);
  waiting_.erase(best);
  return task;
}

bool TransferLoop::StartOrFinish(std::unique_ptr<Task> task, const OnComplete& on_complete) {
  if (task->precompleted) {
    absl::Status status = *task->precompleted;
    return on_complete(*task, status);
  }
  absl::Status status = StartAttempt(*task);
  if (!status.ok()) {
    task->sink->ReleaseAttemptResources();
    return on_complete(*task, status);
  }
  active_.push_back(std::move(task));
  return true;
}

absl::Status TransferLoop::StartAttempt(Task& task) {
  OTA_RETURN_IF_ERROR(task.sink->BeginAttempt());
  task.easy = session_.Acquire();
  if (!task.easy) return absl::InternalError("curl_easy_init failed");
  ++task.attempts;
  task.write_error = absl::OkStatus();
  task.errbuf[0] = '\0';
  task.observer = observer_;
  const std::string& directives =
      task.content_mismatch_seen ? task.cache_control_after_mismatch : task.cache_control;
  task.headers.reset();
  if (!directives.empty()) {
    task.headers.reset(curl_slist_append(nullptr, StrCat(kCacheControlHeader, directives).c_str()));
  }

  // Only what differs per transfer; the rest was set when the session made the handle.
  CURL* easy = task.easy.get();
  curl_easy_setopt(easy, CURLOPT_URL, task.url.c_str());
  SetRedirectPolicy(easy, task.url);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &task);
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, task.errbuf.data());
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, task.headers.get());

  CURLMcode mc = curl_multi_add_handle(session_.multi(), easy);
  if (mc != CURLM_OK) {
    session_.Release(std::move(task.easy));
    return absl::InternalError(StrCat("curl_multi_add_handle: ", curl_multi_strerror(mc)));
  }
  return absl::OkStatus();
}

AttemptOutcome TransferLoop::Classify(Task& task, CURLcode result) {
  CURL* easy = task.easy.get();
  if (result == CURLE_WRITE_ERROR && !task.write_error.ok()) {
    bool content_wrong = task.write_error.code() == absl::StatusCode::kDataLoss;
    return {task.write_error, content_wrong};
  }
  if (result != CURLE_OK) {
    return ClassifyCurlError(task.url, result,
                             DescribeCurlFailure(easy, result, task.errbuf.data()), config_.proxy);
  }
  long code = 0;
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
  if (code != 0 && (code < 200 || code > 299)) {
    curl_off_t retry_after = 0;
    curl_easy_getinfo(easy, CURLINFO_RETRY_AFTER, &retry_after);
    return ClassifyHttpCode(task.url, code, static_cast<long>(retry_after));
  }
  absl::Status verified = task.sink->EndAttempt();
  if (!verified.ok()) return {verified, verified.code() == absl::StatusCode::kDataLoss};
  return {task.sink->Commit()};
}

bool TransferLoop::OnAttemptDone(CURL* easy, CURLcode result, const OnComplete& on_complete) {
  auto it = std::find_if(active_.begin(), active_.end(),
                         [easy](const auto& task) { return task->easy.get() == easy; });
  if (it == active_.end()) return true;  // not ours; cannot happen
  std::unique_ptr<Task> task = std::move(*it);
  // Order does not matter; swap-and-pop keeps this O(1).
  std::swap(*it, active_.back());
  active_.pop_back();

  AttemptOutcome outcome = Classify(*task, result);
  task->sink->ReleaseAttemptResources();
  curl_multi_remove_handle(session_.multi(), easy);
  session_.Release(std::move(task->easy));
  task->headers.reset();

  if (!WillRetry(outcome, task->attempts, max_attempts_)) {
    return on_complete(*task, FinalStatus(outcome, task->attempts));
  }
  if (outcome.status.code() == absl::StatusCode::kDataLoss) task->content_mismatch_seen = true;
  const int delay_ms =
      BackoffMs({.initial_ms = config_.backoff_initial_ms, .max_ms = config_.backoff_max_ms},
                task->attempts, outcome.retry_after_s, rng_());
  std::string error(outcome.status.message());
  log::Warning("download attempt failed, will retry", {{"url", task->url},
                                                       {"attempt", std::to_string(task->attempts)},
                                                       {"retry_in_ms", std::to_string(delay_ms)},
                                                       {"error", error}});
  task->due = Clock::now() + std::chrono::milliseconds(delay_ms);
  waiting_.push_back(std::move(task));
  return true;
}

}  // namespace ota::http
