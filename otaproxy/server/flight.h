// One in-flight download that fills the cache, shared by every client asking for its key
// (otaproxy's single flight, see proxy_server.h).
//
// Run() downloads on a worker thread into a temp file of the store; Serve() streams that file to
// one client as bytes arrive (sendfile), from any number of client threads at once. A client may
// send everything but the last byte until the download is complete and verified (length against
// Content-Length and, with file_sha256, the content through zstd when file_compression_alg=zst:
// content::ContentVerifier); if that fails the client's connection is closed, so a broken
// download is a truncated response, never a complete wrong one, and never a cache entry.
// Upstream statuses other than 200 are passed to every client, not cached.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

#include "otaproxy/cache/cache_store.h"
#include "otaproxy/server/cache_control.h"
#include "otaproxy/server/client_socket.h"
#include "otaproxy/server/counters.h"
#include "otaproxy/upstream/upstream_client.h"

namespace ota::proxy {

class Flight {
 public:
  // `url` is the cache URL (informational, stored with the entry).
  Flight(std::string key, std::string url, UpstreamRequest request, CacheControl cc);
  Flight(const Flight&) = delete;
  Flight& operator=(const Flight&) = delete;

  const std::string& key() const { return key_; }

  // The download, start to end. `unregister` runs as soon as the outcome is known and before
  // clients learn it, so that a later request starts afresh or finds the committed entry.
  // Aborts when `stopping` is set.
  void Run(UpstreamClient& upstream, CacheStore& store, const std::atomic<bool>& stopping,
           Counters& counters, const std::function<void()>& unregister);

  // Answers one client from the download (`joined`: it was already running). Returns whether
  // the connection stays open.
  bool Serve(ClientSocket& sock, const std::string& echo, bool joined, bool keep_alive);

 private:
  enum class State { kWaitingHead, kStreaming, kDone, kFailed };

  void Finish(State state, std::string failure, int failure_status,
              const std::function<void()>& unregister);
  // Bytes a client may send now: all of them once verified, else all but the last.
  uint64_t VisibleLocked() const;

  const std::string key_;
  const std::string url_;
  const UpstreamRequest request_;
  const CacheControl cc_;

  std::mutex mu_;
  std::condition_variable cv_;
  State state_ = State::kWaitingHead;
  UpstreamHead head_;
  bool head_known_ = false;
  bool passthrough_ = false;  // status != 200: relayed from error_body_, never cached
  std::string error_body_;
  uint64_t written_ = 0;
  int failure_status_ = 502;  // answer for clients that were not answered yet
  std::string failure_;
  TempFile temp_;
};

}  // namespace ota::proxy
