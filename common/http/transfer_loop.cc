#include "common/http/transfer_loop.h"

#include <strings.h>

#include <algorithm>
#include <cmath>
#include <string_view>
#include <utility>

#include "common/http/byte_range.h"
#include "common/http/cache_control.h"
#include "common/log/log.h"
#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::http {
namespace {

// Cancellation and backoff deadlines are checked at least this often while waiting.
constexpr int kMaxPollMs = 100;
// Jobs waiting for a retry hold a temp file; bound how many may wait besides the active ones.
constexpr size_t kWaitingPerSlot = 4;

bool HeaderNameIs(std::string_view line, std::string_view name) {
  return line.size() > name.size() && line[name.size()] == ':' &&
         ::strncasecmp(line.data(), name.data(), name.size()) == 0;
}

std::string HeaderValue(std::string_view line, size_t name_size) {
  std::string_view v = line.substr(name_size + 1);
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() &&
         (v.back() == '\r' || v.back() == '\n' || v.back() == ' ' || v.back() == '\t')) {
    v.remove_suffix(1);
  }
  return std::string(v);
}

// Keeps what resuming needs from the response's headers; a new status line (a redirect, a
// 100 Continue) starts over.
size_t OnHeader(char* data, size_t size, size_t nmemb, void* user) {
  auto* task = static_cast<Task*>(user);
  const std::string_view line(data, size * nmemb);
  if (line.starts_with("HTTP/")) {
    task->etag.clear();
    task->last_modified.clear();
    task->content_range.clear();
    task->cache_control_echo.clear();
  } else if (HeaderNameIs(line, "etag")) {
    task->etag = HeaderValue(line, 4);
  } else if (HeaderNameIs(line, "last-modified")) {
    task->last_modified = HeaderValue(line, 13);
  } else if (HeaderNameIs(line, "content-range")) {
    task->content_range = HeaderValue(line, 13);
  } else if (HeaderNameIs(line, kCacheControlHeader)) {
    task->cache_control_echo = HeaderValue(line, kCacheControlHeader.size());
  }
  return size * nmemb;
}

// A proxy answering a blob request (file_sha256=<hex> sent) from its cache or an external cache
// says in its Ota-File-Cache-Control echo which content it sends and how that is compressed: a
// USB stick may hold only <sha256>.zst of a file asked for uncompressed, and a cached entry is
// what was fetched first, whichever way later requests ask (today's otaproxy and ours). The body
// is taken as the echo says (unless the digest sent names the body itself:
// Task::echo_tells_compression); an echo for another file is wrong content. Without a digest in
// the echo (a relayed or URL-keyed answer) the body is what was asked for.
absl::Status AdoptProxyEcho(Task& task, bool continuing) {
  if (task.cache_control_echo.empty()) return absl::OkStatus();
  absl::StatusOr<CacheControl> sent = ParseCacheControl(task.cache_control);
  if (!sent.ok() || sent->file_sha256.empty()) return absl::OkStatus();  // not a blob request
  absl::StatusOr<CacheControl> echo = ParseCacheControl(task.cache_control_echo);
  if (!echo.ok()) {
    return absl::DataLossError(StrCat("GET ", task.url, ": unreadable ", kCacheControlHeader,
                                      " answer: ", echo.status().message()));
  }
  if (echo->file_sha256.empty()) return absl::OkStatus();
  if (echo->file_sha256 != sent->file_sha256) {
    return absl::DataLossError(StrCat("GET ", task.url, ": the proxy answered with file_sha256=",
                                      echo->file_sha256, " for file_sha256=", sent->file_sha256));
  }
  if (!task.echo_tells_compression) return absl::OkStatus();
  content::Compression body = content::Compression::kNone;
  if (echo->file_compression_alg == "zst") {
    body = content::Compression::kZstd;
  } else if (!echo->file_compression_alg.empty()) {
    return absl::DataLossError(StrCat("GET ", task.url,
                                      ": the proxy sent the body compressed with unsupported ",
                                      echo->file_compression_alg));
  }
  if (body == task.sink->body_compression()) return absl::OkStatus();
  if (continuing) {
    return absl::DataLossError(
        StrCat("GET ", task.url, ": a resumed body is compressed otherwise than its start"));
  }
  log::Debug("taking the body as the proxy says it is compressed",
             {{"url", task.url}, {"file_compression_alg", echo->file_compression_alg}});
  return task.sink->AdoptBodyCompression(body);
}

// The first body bytes of an attempt's 2xx response: does it continue the stream the sink holds,
// start it afresh, or neither?
absl::Status CheckHead(Task& task, long code) {
  if (code == 206) {
    if (task.range_start == 0) {
      return absl::UnavailableError(
          StrCat("GET ", task.url, ": HTTP 206 to a request without Range"));
    }
    absl::StatusOr<ContentRange> range = ParseContentRange(task.content_range);
    if (!range.ok()) {
      return absl::UnavailableError(StrCat("GET ", task.url, ": HTTP 206 to Range bytes=",
                                           task.range_start, "-: ", range.status().message()));
    }
    if (range->first != task.range_start) {
      return absl::UnavailableError(StrCat("GET ", task.url, ": HTTP 206 to Range bytes=",
                                           task.range_start, "- starts at byte ", range->first));
    }
    OTA_RETURN_IF_ERROR(AdoptProxyEcho(task, /*continuing=*/true));
    ++task.resumes;
    task.stream_may_resume = true;
    return absl::OkStatus();
  }
  if (task.range_start > 0) {
    // The server sends the whole body (no range support, or If-Range found it changed): the
    // stream starts over, in the same file.
    log::Info("server sent the whole body to a resumed download; starting over",
              {{"url", task.url},
               {"status", std::to_string(code)},
               {"had_bytes", std::to_string(task.stream_bytes)}});
    OTA_RETURN_IF_ERROR(task.sink->BeginAttempt());
    task.stream_bytes = 0;
    task.range_start = 0;
  }
  // Code 0 is a non-HTTP transfer (file://): nothing to ask a range of.
  task.stream_may_resume = code == 200 && task.sink->CanResume();
  task.validator.clear();
  if (!task.etag.empty() && !task.etag.starts_with("W/")) {
    task.validator = task.etag;  // weak ETags may not be used in If-Range
  } else if (!task.last_modified.empty()) {
    task.validator = task.last_modified;
  }
  return AdoptProxyEcho(task, /*continuing=*/false);
}

size_t OnBody(char* data, size_t size, size_t nmemb, void* user) {
  auto* task = static_cast<Task*>(user);
  size_t bytes = size * nmemb;
  if (task->bucket != nullptr && !task->bucket->Take(bytes, RateBucket::Clock::now())) {
    task->paused = true;
    return CURL_WRITEFUNC_PAUSE;  // curl keeps the bytes and hands them over again on unpause
  }
  task->network_bytes += bytes;
  if (task->observer != nullptr && task->observer->on_bytes) task->observer->on_bytes(bytes);
  long code = 0;
  curl_easy_getinfo(task->easy.get(), CURLINFO_RESPONSE_CODE, &code);
  // Error pages are not content; code 0 is a non-HTTP transfer (file://).
  if (code != 0 && (code < 200 || code > 299)) return bytes;
  if (!task->head_checked) {
    task->head_checked = true;
    absl::Status head = CheckHead(*task, code);
    if (!head.ok()) {
      task->write_error_retryable = head.code() == absl::StatusCode::kUnavailable;
      task->write_error = std::move(head);
      return 0;
    }
  }
  absl::Status status = task->sink->Write(data, bytes);
  if (!status.ok()) {
    task->write_error = std::move(status);
    return 0;  // anything but `bytes` makes curl abort with CURLE_WRITE_ERROR
  }
  task->stream_bytes += bytes;
  return bytes;
}

}  // namespace

RateBucket::RateBucket(uint64_t bytes_per_second)
    : rate_(static_cast<double>(bytes_per_second)),
      capacity_(std::max(rate_ / 2, 1.0)),
      tokens_(0),
      last_(Clock::now()) {}

void RateBucket::Refill(Clock::time_point now) {
  const double seconds = std::chrono::duration<double>(now - last_).count();
  last_ = now;
  if (seconds > 0) tokens_ = std::min(capacity_, tokens_ + seconds * rate_);
}

bool RateBucket::Take(uint64_t bytes, Clock::time_point now) {
  Refill(now);
  if (tokens_ <= 0) return false;
  tokens_ -= static_cast<double>(bytes);
  return true;
}

int RateBucket::WaitMs(Clock::time_point now) {
  Refill(now);
  if (tokens_ > 0) return 0;
  return static_cast<int>(std::ceil(-tokens_ * 1000 / rate_)) + 1;
}

TransferLoop::TransferLoop(const FetcherConfig& config, Session& session,
                           const TransferObserver* observer, const CancelFlag* cancel)
    : config_(config),
      session_(session),
      observer_(observer),
      cancel_(cancel),
      max_active_(static_cast<size_t>(std::max(config.max_parallel, 1))),
      max_attempts_(std::max(config.max_attempts, 1)),
      bucket_(config.max_download_rate > 0 ? std::make_unique<RateBucket>(config.max_download_rate)
                                           : nullptr) {}

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

    UnpauseIfTokens();
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
  if (bucket_ &&
      std::any_of(active_.begin(), active_.end(), [](const auto& task) { return task->paused; })) {
    wait_ms = std::min(wait_ms, bucket_->WaitMs(Clock::now()));
  }
  return wait_ms;
}

void TransferLoop::UnpauseIfTokens() {
  if (!bucket_ || active_.empty()) return;
  // Round-robin, so that the transfer first in the list does not always get the fresh tokens.
  const size_t n = active_.size();
  const size_t from = unpause_from_++ % n;
  for (size_t i = 0; i < n; ++i) {
    Task& task = *active_[(from + i) % n];
    if (!task.paused) continue;
    if (bucket_->WaitMs(Clock::now()) > 0) return;
    task.paused = false;
    // curl delivers the held bytes from inside this call (OnBody may pause it again).
    curl_easy_pause(task.easy.get(), CURLPAUSE_CONT);
  }
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
    task->sink->ReleaseAttemptResources(/*keep_stream=*/false);
    return on_complete(*task, status);
  }
  active_.push_back(std::move(task));
  return true;
}

absl::Status TransferLoop::StartAttempt(Task& task) {
  if (task.resume_next) {
    OTA_RETURN_IF_ERROR(task.sink->ContinueAttempt());
    task.range_start = task.stream_bytes;
  } else {
    OTA_RETURN_IF_ERROR(task.sink->BeginAttempt());
    task.stream_bytes = 0;
    task.range_start = 0;
    task.validator.clear();
  }
  task.easy = session_.Acquire();
  if (!task.easy) return absl::InternalError("curl_easy_init failed");
  ++task.attempts;
  task.write_error = absl::OkStatus();
  task.write_error_retryable = false;
  task.head_checked = false;
  task.stream_may_resume = false;
  task.etag.clear();
  task.last_modified.clear();
  task.content_range.clear();
  task.cache_control_echo.clear();
  task.errbuf[0] = '\0';
  task.observer = observer_;
  task.bucket = bucket_.get();
  task.paused = false;
  const std::string& directives =
      task.content_mismatch_seen ? task.cache_control_after_mismatch : task.cache_control;
  task.headers.reset();
  auto add_header = [&task](const std::string& line) {
    task.headers.reset(curl_slist_append(task.headers.release(), line.c_str()));
  };
  if (!directives.empty()) add_header(StrCat(kCacheControlHeader, ": ", directives));
  if (task.range_start > 0) {
    add_header(StrCat("Range: bytes=", task.range_start, "-"));
    if (!task.validator.empty()) add_header(StrCat("If-Range: ", task.validator));
  }

  // Only what differs per transfer; the rest was set when the session made the handle.
  CURL* easy = task.easy.get();
  curl_easy_setopt(easy, CURLOPT_URL, task.url.c_str());
  SetRedirectPolicy(easy, task.url);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &task);
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, task.errbuf.data());
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, task.headers.get());
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, &task);

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
    return {task.write_error, content_wrong || task.write_error_retryable};
  }
  if (result != CURLE_OK) {
    return ClassifyCurlError(task.url, result,
                             DescribeCurlFailure(easy, result, task.errbuf.data()), config_.proxy);
  }
  long code = 0;
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
  if (code == 416 && task.range_start > 0) {
    // Nothing left to send from there (the file shrank, or a proxy cut it differently).
    return {absl::UnavailableError(
                StrCat("GET ", task.url, ": HTTP 416 to Range bytes=", task.range_start, "-")),
            true};
  }
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
  // A body cut in transit continues from where it stopped: not after wrong content (the stream
  // is what was wrong), nor after a refused range (write_error_retryable: start over).
  task->resume_next = config_.resume && WillRetry(outcome, task->attempts, max_attempts_) &&
                      outcome.status.code() == absl::StatusCode::kUnavailable &&
                      !task->write_error_retryable &&
                      (task->stream_may_resume || (task->range_start > 0 && !task->head_checked)) &&
                      task->stream_bytes > 0;
  if (task->resume_next) {
    if (absl::Status suspended = task->sink->Suspend(); !suspended.ok()) {
      log::Warning("cannot keep a cut download for resuming; starting over",
                   {{"url", task->url}, {"error", std::string(suspended.message())}});
      task->resume_next = false;
    }
  }
  task->sink->ReleaseAttemptResources(/*keep_stream=*/task->resume_next);
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
  log::Warning("download attempt failed, will retry",
               {{"url", task->url},
                {"attempt", std::to_string(task->attempts)},
                {"retry_in_ms", std::to_string(delay_ms)},
                {"resume_from", task->resume_next ? std::to_string(task->stream_bytes) : "0"},
                {"error", error}});
  task->due = Clock::now() + std::chrono::milliseconds(delay_ms);
  waiting_.push_back(std::move(task));
  return true;
}

}  // namespace ota::http
