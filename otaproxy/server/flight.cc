#include "otaproxy/server/flight.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "common/crypto/sha256.h"
#include "common/log/log.h"
#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::proxy {
namespace {

constexpr size_t kMaxErrorBody = 1 << 20;     // upstream error bodies are relayed up to this size
constexpr uint64_t kNotifyBytes = 256 << 10;  // clients of a download are woken per this many

}  // namespace

Flight::Flight(std::string key, std::string url, UpstreamRequest request, http::CacheControl cc,
               TempFile temp, CacheStore& store, Counters& counters,
               std::function<void(const Flight&)> unregister)
    : key_(std::move(key)),
      url_(std::move(url)),
      request_(std::move(request)),
      cc_(std::move(cc)),
      store_(store),
      counters_(counters),
      unregister_(std::move(unregister)),
      temp_(std::move(temp)),
      fd_(temp_.fd.get()) {
  // With file_sha256 the content is verified as it arrives (only "" and "zst" compression reach
  // a download).
  if (!cc_.file_sha256.empty()) {
    crypto::Sha256Digest want{};
    if (!crypto::FromHex(cc_.file_sha256, &want)) {
      verify_error_ = absl::InvalidArgumentError(StrCat("bad file_sha256 ", cc_.file_sha256));
    }
    verifier_.emplace(request_.url,
                      cc_.file_compression_alg == "zst" ? content::Compression::kZstd
                                                        : content::Compression::kNone,
                      content::Expected{.sha256 = want, .size = std::nullopt});
    if (verify_error_.ok()) verify_error_ = verifier_->Begin();
  }
}

Flight::~Flight() = default;

uint64_t Flight::VisibleLocked() const {
  if (state_ == State::kDone) return written_;
  return written_ > 0 ? written_ - 1 : 0;
}

void Flight::WakeAll(const std::vector<Waker>& waiters) {
  for (const Waker& w : waiters) w.Wake();
}

void Flight::Finish(State state, std::string failure, int failure_status) {
  unregister_(*this);
  std::vector<Waker> waiters;
  {
    std::lock_guard lock(mu_);
    state_ = state;
    failure_ = std::move(failure);
    failure_status_ = failure_status;
    waiters.swap(waiters_);
  }
  WakeAll(waiters);
}

bool Flight::OnHead(const UpstreamHead& h) {
  if (h.cdn_hit && h.status == 200) counters_.cdn_hits++;
  std::vector<Waker> waiters;
  {
    std::lock_guard lock(mu_);
    head_ = h;
    head_.content_type = CleanHeaderValue(h.content_type);
    head_.content_encoding = CleanHeaderValue(h.content_encoding);
    head_known_ = true;
    passthrough_ = h.status != 200;
    if (!passthrough_) state_ = State::kStreaming;
    waiters.swap(waiters_);
  }
  WakeAll(waiters);
  return true;
}

UpstreamSink::Take Flight::OnBody(std::string_view data) {
  if (passthrough_) {  // written by OnHead, on this thread
    std::lock_guard lock(mu_);
    if (error_body_.size() < kMaxErrorBody) {
      error_body_.append(data.substr(0, kMaxErrorBody - error_body_.size()));
    }
    return Take::kTaken;
  }
  std::string_view left = data;
  while (!left.empty()) {
    const ssize_t n = ::pwrite(fd_, left.data(), left.size(), static_cast<off_t>(offset_));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      write_error_ =
          StrCat("write ", temp_.path.string(), ": ", n < 0 ? ErrnoText(errno) : std::string("0"));
      return Take::kAbort;
    }
    offset_ += static_cast<uint64_t>(n);
    left.remove_prefix(static_cast<size_t>(n));
  }
  // After a content error the rest is still downloaded (the verdict comes at the end).
  if (verifier_ && verify_error_.ok()) verify_error_ = verifier_->Update(data);
  std::vector<Waker> waiters;
  {
    std::lock_guard lock(mu_);
    written_ = offset_;
    // Waking every client per network read costs more than it gains: batch the wake-ups.
    if (offset_ - notified_ >= kNotifyBytes) waiters = TakeWaitersForNewBytesLocked();
  }
  WakeAll(waiters);
  return Take::kTaken;
}

void Flight::OnBurstEnd() {
  std::vector<Waker> waiters;
  {
    std::lock_guard lock(mu_);
    if (offset_ > notified_) waiters = TakeWaitersForNewBytesLocked();
  }
  WakeAll(waiters);
}

std::vector<Waker> Flight::TakeWaitersForNewBytesLocked() {
  std::vector<Waker> waiters;
  if (waiters_.empty()) return waiters;
  notified_ = offset_;
  waiters.swap(waiters_);
  return waiters;
}

void Flight::OnDone(absl::Status status, bool /*head_delivered*/) {
  if (!status.ok()) {
    counters_.upstream_failures++;
    std::string reason = write_error_.empty() ? std::string(status.message()) : write_error_;
    log::Warning("cache fill failed", {{"key", key_}, {"error", reason}});
    store_.DiscardTemp(temp_.path);
    Finish(State::kFailed, std::move(reason), write_error_.empty() ? 502 : 500);
    return;
  }
  if (passthrough_) {
    store_.DiscardTemp(temp_.path);
    Finish(State::kDone, "", 0);
    return;
  }
  std::string problem;
  if (head_.content_length && *head_.content_length != offset_) {
    problem = StrCat("length ", offset_, " != Content-Length ", *head_.content_length);
  } else if (verifier_) {
    if (verify_error_.ok()) verify_error_ = verifier_->Finish();
    problem = std::string(verify_error_.message());
  }
  if (!problem.empty()) {
    counters_.verify_failures++;
    log::Warning("download failed verification, not cached",
                 {{"key", key_}, {"url", request_.url}, {"error", problem}});
    store_.DiscardTemp(temp_.path);
    Finish(State::kFailed, problem, 502);
    return;
  }
  CacheEntry entry;
  entry.key = key_;
  entry.url = url_;
  entry.size = offset_;
  entry.file_sha256 = cc_.file_sha256;
  entry.file_compression_alg = cc_.file_compression_alg;
  entry.content_type = head_.content_type;
  entry.content_encoding = head_.content_encoding;
  absl::StatusOr<bool> committed = store_.Commit(temp_.path, std::move(entry));
  if (!committed.ok()) {
    log::Error("cache commit failed",
               {{"key", key_}, {"error", std::string(committed.status().message())}});
  } else if (*committed) {
    counters_.committed++;
  }
  // Clients still stream from the (renamed or discarded) file through the flight's open fd.
  Finish(State::kDone, "", 0);
}

Flight::View Flight::Look(bool head_sent, uint64_t sent, const Waker& waker) {
  std::lock_guard lock(mu_);
  View v;
  v.head_known = head_known_;
  v.passthrough = passthrough_;
  v.done = state_ == State::kDone;
  v.failed = state_ == State::kFailed;
  v.visible = VisibleLocked();
  if (head_known_) v.head = head_;
  v.failure_status = failure_status_;
  v.failure = failure_;
  const bool ended = v.done || v.failed;
  const bool ready = ended || (head_sent ? v.visible > sent : (v.head_known && !v.passthrough));
  if (!ready) waiters_.push_back(waker);
  return v;
}

std::string Flight::ErrorBody() {
  std::lock_guard lock(mu_);
  return error_body_;
}

ResponseSource::Fill FlightResponse::FillQueue(OutputQueue& out, const Waker& waker) {
  const Flight::View v = flight_->Look(head_sent_, sent_, waker);
  if (!head_sent_) {
    if (!v.done && !v.failed && (!v.head_known || v.passthrough)) return Fill::kWait;
    if (!v.head_known || v.passthrough) {
      // An error status to pass through, or no response at all.
      if (v.failed || !v.head_known) {
        out.Add(FormatSimple(v.failure_status, StrCat("otaproxy: ", v.failure, "\n"), keep_alive_));
        return Fill::kLast;
      }
      std::string body = flight_->ErrorBody();
      ResponseHead head;
      head.status = v.head.status;
      head.content_length = body.size();
      head.content_type = v.head.content_type;
      head.content_encoding = v.head.content_encoding;
      head.cache_state = joined_ ? "join" : "miss";
      head.keep_alive = keep_alive_;
      out.Add(FormatHead(head));
      out.Add(std::move(body));
      return Fill::kLast;
    }
    ResponseHead head;
    head.content_length = v.head.content_length;
    head.content_type =
        v.head.content_type.empty() ? "application/octet-stream" : v.head.content_type;
    head.content_encoding = v.head.content_encoding;
    head.cache_control_echo = echo_;
    head.cache_state = joined_ ? "join" : "miss";
    head.keep_alive = keep_alive_;
    chunked_ = !head.content_length.has_value();
    out.Add(FormatHead(head));
    head_sent_ = true;
  }
  if (v.failed) return Fill::kAbort;  // truncated: close
  bool added = false;
  if (v.visible > sent_) {
    const uint64_t n = v.visible - sent_;
    if (chunked_) out.Add(ChunkHeader(n));
    out.AddFile(flight_->fd(), sent_, n);
    if (chunked_) out.Add(std::string(kChunkEnd));
    sent_ = v.visible;
    added = true;
  }
  if (v.done) {
    if (chunked_) out.Add(std::string(kLastChunk));
    return Fill::kLast;
  }
  // Nothing new and not ended: Look() registered the waker.
  return added || !out.empty() ? Fill::kMore : Fill::kWait;
}

}  // namespace ota::proxy
