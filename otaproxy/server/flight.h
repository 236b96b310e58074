// One in-flight download that fills the cache, shared by every client asking for its key
// (otaproxy's single flight, see proxy_server.h).
//
// The download is an UpstreamSink: it runs on the upstream client's thread and writes into a
// temp file of the store. Each client of the key has a FlightResponse that sends that file as
// bytes arrive (sendfile, from the client's I/O thread), following the download's committed
// length: a client may send everything but the last byte until the download is complete and
// verified (length against Content-Length and, with file_sha256, the content through zstd when
// file_compression_alg=zst: content::ContentVerifier); if that fails the client's connection is
// closed, so a broken download is a truncated response, never a complete wrong one, and never a
// cache entry. Clients waiting for bytes are woken every kNotifyBytes and whenever the bytes the
// network had are written (so a slow upstream's bytes go on at once), and never block the
// download: a slow or stalled client only falls behind.
// Upstream statuses other than 200 are passed to every client, not cached.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/content/verifier.h"
#include "common/http/cache_control.h"
#include "otaproxy/cache/cache_store.h"
#include "otaproxy/server/counters.h"
#include "otaproxy/server/response.h"
#include "otaproxy/upstream/upstream_client.h"

namespace ota::proxy {

class Flight : public UpstreamSink {
 public:
  // `url` is the cache URL (informational, stored with the entry). `temp` receives the body.
  // `unregister` runs as soon as the outcome is known and before clients learn it, so that a
  // later request starts afresh or finds the committed entry.
  Flight(std::string key, std::string url, UpstreamRequest request, http::CacheControl cc,
         TempFile temp, CacheStore& store, Counters& counters,
         std::function<void(const Flight&)> unregister);
  ~Flight() override;

  const std::string& key() const { return key_; }
  const UpstreamRequest& request() const { return request_; }

  // UpstreamSink (the upstream client's thread).
  bool OnHead(const UpstreamHead& head) override;
  Take OnBody(std::string_view data) override;
  void OnBurstEnd() override;
  void OnDone(absl::Status status, bool head_delivered) override;

  // What a client of the download sees at one moment.
  struct View {
    bool head_known = false;
    bool passthrough = false;  // a status other than 200: relayed, never cached
    bool done = false;         // complete (verified and committed, or a passthrough ended)
    bool failed = false;       // no complete response will come
    uint64_t visible = 0;      // bytes of the temp file a client may send
    UpstreamHead head;         // when head_known
    int failure_status = 502;  // when failed
    std::string failure;
  };
  // The download's state for a client that has sent the head or not and `sent` body bytes. When
  // there is nothing new for it (no head to send yet; no bytes beyond `sent`; not ended),
  // `waker` is registered, atomically with the look, and called once there is.
  View Look(bool head_sent, uint64_t sent, const Waker& waker);
  // The upstream error body of a passthrough (complete once done).
  std::string ErrorBody();
  int fd() const { return fd_; }

 private:
  enum class State { kWaitingHead, kStreaming, kDone, kFailed };

  // Sets the final state and wakes every client; `unregister` first.
  void Finish(State state, std::string failure, int failure_status);
  uint64_t VisibleLocked() const;
  // Wakes the registered clients (called without mu_).
  void WakeAll(const std::vector<Waker>& waiters);
  // Takes the registered clients when `offset_` has new bytes for them (mu_ held).
  std::vector<Waker> TakeWaitersForNewBytesLocked();

  const std::string key_;
  const std::string url_;
  const UpstreamRequest request_;
  const http::CacheControl cc_;
  CacheStore& store_;
  Counters& counters_;
  const std::function<void(const Flight&)> unregister_;
  TempFile temp_;  // fd_ stays valid (and is read by clients) until the Flight is destroyed
  const int fd_;

  // Upstream thread only.
  std::optional<content::ContentVerifier> verifier_;
  absl::Status verify_error_;
  std::string write_error_;
  uint64_t offset_ = 0;
  uint64_t notified_ = 0;

  std::mutex mu_;
  State state_ = State::kWaitingHead;
  UpstreamHead head_;
  bool head_known_ = false;
  bool passthrough_ = false;
  std::string error_body_;
  uint64_t written_ = 0;
  int failure_status_ = 502;
  std::string failure_;
  std::vector<Waker> waiters_;
};

// Answers one client from a download (`joined`: it was already running).
class FlightResponse : public ResponseSource {
 public:
  FlightResponse(std::shared_ptr<Flight> flight, std::string echo, bool joined, bool keep_alive)
      : flight_(std::move(flight)),
        echo_(std::move(echo)),
        joined_(joined),
        keep_alive_(keep_alive) {}
  Fill FillQueue(OutputQueue& out, const Waker& waker) override;

 private:
  const std::shared_ptr<Flight> flight_;
  const std::string echo_;
  const bool joined_;
  const bool keep_alive_;
  bool head_sent_ = false;
  bool chunked_ = false;
  uint64_t sent_ = 0;
};

}  // namespace ota::proxy
