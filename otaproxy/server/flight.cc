#include "otaproxy/server/flight.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <utility>

#include "common/content/verifier.h"
#include "common/crypto/sha256.h"
#include "common/log/log.h"
#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::proxy {
namespace {

constexpr size_t kMaxErrorBody = 1 << 20;     // upstream error bodies are relayed up to this size
constexpr uint64_t kNotifyBytes = 256 << 10;  // clients of a download are woken per this many

}  // namespace

Flight::Flight(std::string key, std::string url, UpstreamRequest request, CacheControl cc)
    : key_(std::move(key)),
      url_(std::move(url)),
      request_(std::move(request)),
      cc_(std::move(cc)) {}

uint64_t Flight::VisibleLocked() const {
  if (state_ == State::kDone) return written_;
  return written_ > 0 ? written_ - 1 : 0;
}

void Flight::Finish(State state, std::string failure, int failure_status,
                    const std::function<void()>& unregister) {
  unregister();
  {
    std::lock_guard lock(mu_);
    state_ = state;
    failure_ = std::move(failure);
    failure_status_ = failure_status;
  }
  cv_.notify_all();
}

void Flight::Run(UpstreamClient& upstream, CacheStore& store, const std::atomic<bool>& stopping,
                 Counters& counters, const std::function<void()>& unregister) {
  counters.upstream_fetches++;
  absl::StatusOr<TempFile> temp = store.CreateTemp();
  if (!temp.ok()) {
    log::Error("cannot create cache temp file", {{"error", std::string(temp.status().message())}});
    Finish(State::kFailed, std::string(temp.status().message()), 500, unregister);
    return;
  }
  const int fd = temp->fd.get();
  const std::filesystem::path temp_path = temp->path;
  {
    std::lock_guard lock(mu_);
    temp_ = *std::move(temp);
  }
  // With file_sha256 the content is verified as it arrives (only "" and "zst" compression reach
  // a download).
  std::optional<content::ContentVerifier> verifier;
  absl::Status verify_error;
  if (!cc_.file_sha256.empty()) {
    crypto::Sha256Digest want{};
    if (!crypto::FromHex(cc_.file_sha256, &want)) {
      verify_error = absl::InvalidArgumentError(StrCat("bad file_sha256 ", cc_.file_sha256));
    }
    verifier.emplace(request_.url,
                     cc_.file_compression_alg == "zst" ? content::Compression::kZstd
                                                       : content::Compression::kNone,
                     content::Expected{.sha256 = want, .size = std::nullopt});
    if (verify_error.ok()) verify_error = verifier->Begin();
  }
  std::string write_error;

  UpstreamCallbacks callbacks;
  callbacks.cancel = &stopping;
  callbacks.on_head = [&](const UpstreamHead& h) {
    {
      std::lock_guard lock(mu_);
      head_ = h;
      head_.content_type = CleanHeaderValue(h.content_type);
      head_.content_encoding = CleanHeaderValue(h.content_encoding);
      head_known_ = true;
      passthrough_ = h.status != 200;
      if (!passthrough_) state_ = State::kStreaming;
    }
    cv_.notify_all();
    return true;
  };
  uint64_t offset = 0;
  uint64_t notified = 0;
  callbacks.on_body = [&](std::string_view data) {
    if (passthrough_) {
      std::lock_guard lock(mu_);
      if (error_body_.size() < kMaxErrorBody) {
        error_body_.append(data.substr(0, kMaxErrorBody - error_body_.size()));
      }
      return true;
    }
    while (!data.empty()) {
      const ssize_t n = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        write_error =
            StrCat("write ", temp_path.string(), ": ", n < 0 ? ErrnoText(errno) : std::string("0"));
        return false;
      }
      // After a content error the rest is still downloaded (the verdict comes at the end).
      if (verifier && verify_error.ok()) {
        verify_error = verifier->Update(data.substr(0, static_cast<size_t>(n)));
      }
      offset += static_cast<uint64_t>(n);
      data.remove_prefix(static_cast<size_t>(n));
    }
    {
      std::lock_guard lock(mu_);
      written_ = offset;
    }
    // Waking every client per network read costs more than it gains: batch the wake-ups.
    if (offset - notified >= kNotifyBytes) {
      notified = offset;
      cv_.notify_all();
    }
    return true;
  };

  bool head_delivered = false;
  const absl::Status status = upstream.Fetch(request_, callbacks, &head_delivered);
  if (!status.ok()) {
    counters.upstream_failures++;
    std::string reason = write_error.empty() ? std::string(status.message()) : write_error;
    log::Warning("cache fill failed", {{"key", key_}, {"error", reason}});
    store.DiscardTemp(temp_path);
    Finish(State::kFailed, std::move(reason), write_error.empty() ? 502 : 500, unregister);
    return;
  }
  if (passthrough_) {
    store.DiscardTemp(temp_path);
    Finish(State::kDone, "", 0, unregister);
    return;
  }
  std::string problem;
  if (head_.content_length && *head_.content_length != offset) {
    problem = StrCat("length ", offset, " != Content-Length ", *head_.content_length);
  } else if (verifier) {
    if (verify_error.ok()) verify_error = verifier->Finish();
    problem = std::string(verify_error.message());
  }
  if (!problem.empty()) {
    counters.verify_failures++;
    log::Warning("download failed verification, not cached",
                 {{"key", key_}, {"url", request_.url}, {"error", problem}});
    store.DiscardTemp(temp_path);
    Finish(State::kFailed, problem, 502, unregister);
    return;
  }
  CacheEntry entry;
  entry.key = key_;
  entry.url = url_;
  entry.size = offset;
  entry.file_sha256 = cc_.file_sha256;
  entry.file_compression_alg = cc_.file_compression_alg;
  entry.content_type = head_.content_type;
  entry.content_encoding = head_.content_encoding;
  absl::StatusOr<bool> committed = store.Commit(temp_path, std::move(entry));
  if (!committed.ok()) {
    log::Error("cache commit failed",
               {{"key", key_}, {"error", std::string(committed.status().message())}});
  } else if (*committed) {
    counters.committed++;
  }
  // Clients still stream from the (renamed or discarded) file through the flight's open fd.
  Finish(State::kDone, "", 0, unregister);
}

bool Flight::Serve(ClientSocket& sock, const std::string& echo, bool joined, bool keep_alive) {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] {
    return state_ == State::kDone || state_ == State::kFailed || state_ == State::kStreaming;
  });
  if (passthrough_ || !head_known_) {
    // An error status to pass through, or no response at all: wait for the end.
    cv_.wait(lock, [&] { return state_ == State::kDone || state_ == State::kFailed; });
    if (state_ == State::kFailed || !head_known_) {
      const int status = failure_status_;
      const std::string reason = failure_;
      lock.unlock();
      return SendSimple(sock, status, StrCat("otaproxy: ", reason, "\n"), keep_alive);
    }
    ResponseHead head;
    head.status = head_.status;
    head.content_length = error_body_.size();
    head.content_type = head_.content_type;
    head.content_encoding = head_.content_encoding;
    head.cache_state = joined ? "join" : "miss";
    head.keep_alive = keep_alive;
    const std::string body = error_body_;
    lock.unlock();
    return sock.Send(FormatHead(head)) && sock.Send(body) && keep_alive;
  }
  ResponseHead head;
  head.content_length = head_.content_length;
  head.content_type = head_.content_type.empty() ? "application/octet-stream" : head_.content_type;
  head.content_encoding = head_.content_encoding;
  head.cache_control_echo = echo;
  head.cache_state = joined ? "join" : "miss";
  head.keep_alive = keep_alive;
  const bool chunked = !head.content_length.has_value();
  const int fd = temp_.fd.get();
  lock.unlock();
  if (!sock.Send(FormatHead(head))) return false;
  uint64_t sent = 0;
  while (true) {
    lock.lock();
    cv_.wait(lock, [&] {
      return state_ == State::kDone || state_ == State::kFailed || VisibleLocked() > sent;
    });
    if (state_ == State::kFailed) return false;  // truncated: close
    const uint64_t visible = VisibleLocked();
    const bool done = state_ == State::kDone;
    lock.unlock();
    if (!sock.SendBodyFile(chunked, fd, sent, visible - sent)) return false;
    sent = visible;
    if (done) break;
  }
  if (chunked && !sock.EndChunked()) return false;
  return keep_alive;
}

}  // namespace ota::proxy
