// Fetches URLs from the OTA server or the upper otaproxy with libcurl: every transfer runs on one
// thread of the client's own (a curl multi handle: non-blocking, any number of transfers at once,
// connections kept alive and reused between them), streaming each response to its sink. A sink
// may pause its transfer when it cannot take more (a slow client of a relay) and resume it later.
// Bodies are passed through as received (no Content-Encoding decoding). The curl setup (TLS,
// proxy, timeouts, redirect policy: followed, but never from https to http) is otaclient's,
// common/http/curl_easy.h.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "common/http/curl_easy.h"

namespace ota::proxy {

struct UpstreamConfig {
  std::string proxy;      // "http://host:port" of the upper otaproxy; "" = direct
  std::string ca_bundle;  // PEM for HTTPS; "" = system default
  int connect_timeout_s = 10;
  int low_speed_timeout_s = 30;  // abort when no byte arrived for this long (not while paused)
  int max_redirects = 5;
  // Transfers started with `limited` (cache fills) running at once; more wait their turn, in
  // order. 0 = no limit.
  size_t max_limited_transfers = 0;
};

struct UpstreamRequest {
  std::string url;
  std::string cookie;         // Cookie header value as the client sent it; "" = none
  std::string authorization;  // Authorization header value; "" = none
  std::string cache_control;  // Ota-File-Cache-Control to pass on; "" = none
  std::string range;          // Range and If-Range to pass on (a resumed download); "" = none
  std::string if_range;
};

struct UpstreamHead {
  int status = 0;
  std::optional<uint64_t> content_length;
  std::string content_type;
  std::string content_encoding;
  // Ota-File-Cache-Control of the response (an upper otaproxy's echo); "" = none.
  std::string cache_control;
  // `X-Cache: Hit...` (any case): the CDN in front of the server answered from its cache.
  bool cdn_hit = false;
  // Passed back to a relay's client, for resuming: "" = none.
  std::string content_range;
  std::string etag;
  std::string last_modified;
  std::string accept_ranges;
};

// Receives one transfer, on the client's thread. Calls: OnHead once (before the first body
// byte, or at the end for an empty body), OnBody any number of times, OnDone exactly once, last.
class UpstreamSink {
 public:
  virtual ~UpstreamSink() = default;
  // False aborts the transfer.
  virtual bool OnHead(const UpstreamHead& head) = 0;
  enum class Take {
    kTaken,  // all of `data` consumed
    kPause,  // none of it consumed: the transfer pauses; the same bytes come again after Resume()
    kAbort,  // abort the transfer
  };
  virtual Take OnBody(std::string_view data) = 0;
  // After OnBody calls, once the bytes the network had for the transfer are taken (a sink that
  // batches its own work per many OnBody calls finishes the batch here). Default: nothing.
  virtual void OnBurstEnd() {}
  // OK when the whole response (any status) was received and delivered. kUnavailable when the
  // server could not be reached, the transfer broke or a redirect was refused (message names the
  // URL, curl's reason and where a redirect led); kCancelled when the sink aborted or the
  // transfer was cancelled. `head_delivered`: OnHead ran (the sink's own client has been
  // answered, if it answers at the head).
  virtual void OnDone(absl::Status status, bool head_delivered) = 0;
};

// The blocking convenience (Fetch) takes plain callbacks.
struct UpstreamCallbacks {
  // Once, before the first body byte (or at the end for an empty body). False aborts.
  std::function<bool(const UpstreamHead&)> on_head;
  // Body bytes as they arrive. False aborts.
  std::function<bool(std::string_view)> on_body;
  // When set and true, the transfer is aborted (checked about every 100 ms).
  const std::atomic<bool>* cancel = nullptr;
};

class UpstreamClient {
 public:
  using TransferId = uint64_t;

  explicit UpstreamClient(UpstreamConfig config);  // starts the transfer thread
  ~UpstreamClient();                               // Shutdown()
  UpstreamClient(const UpstreamClient&) = delete;
  UpstreamClient& operator=(const UpstreamClient&) = delete;

  // Starts a transfer (any thread); `limited`: it counts against max_limited_transfers and may
  // wait for its turn. The sink is kept until its OnDone has returned. After Shutdown() the
  // sink's OnDone runs at once, on the caller's thread, with kCancelled.
  TransferId Start(UpstreamRequest request, std::shared_ptr<UpstreamSink> sink,
                   bool limited = false);
  // A paused transfer goes on (any thread; nothing for a transfer that ended or is not paused).
  void Resume(TransferId id);
  // Ends a transfer early: its sink's OnDone gets kCancelled unless it already ended (any thread).
  void Cancel(TransferId id);
  // Cancels every transfer (their OnDone run here or on the transfer thread before this returns)
  // and stops the thread. Idempotent.
  void Shutdown();

  // One transfer, blocking the caller until it ended; the callbacks run on the transfer thread.
  // Returns what the sink's OnDone would get; `head_delivered` tells whether on_head ran.
  absl::Status Fetch(const UpstreamRequest& request, const UpstreamCallbacks& callbacks,
                     bool* head_delivered);

  const UpstreamConfig& config() const { return config_; }

 private:
  struct Transfer;
  struct Command {
    enum class Kind { kStart, kResume, kCancel } kind;
    TransferId id = 0;
    UpstreamRequest request;
    std::shared_ptr<UpstreamSink> sink;
    bool limited = false;
  };

  void Run();
  void Post(Command command);
  void StartTransfer(Command& command);
  // Removes the transfer from the multi handle and tells its sink.
  void FinishTransfer(TransferId id, absl::Status status);
  void FinishCompleted(TransferId id, int curl_code);
  // OnBurstEnd for every transfer that got body bytes since the last call.
  void EndBursts();
  ota::http::UniqueEasy AcquireEasy();

  const UpstreamConfig config_;
  const ota::http::EasyOptions easy_options_;
  ota::http::UniqueMulti multi_;

  std::mutex mu_;
  std::vector<Command> commands_;
  bool shutdown_ = false;
  std::atomic<TransferId> next_id_{1};

  // Transfer thread only.
  std::unordered_map<TransferId, std::unique_ptr<Transfer>> transfers_;
  std::vector<ota::http::UniqueEasy> idle_easy_;
  std::vector<TransferId> got_body_;  // transfers whose sinks had OnBody since the last burst end
  size_t limited_running_ = 0;
  std::deque<Command> limited_waiting_;

  std::mutex shutdown_mu_;  // serialises Shutdown()
  std::thread thread_;
};

}  // namespace ota::proxy
