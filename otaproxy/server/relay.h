// A request proxied without the cache (cache off, no_cache, unverifiable compression, hard
// limit reached): the upstream response goes to one client through a small buffer. When the
// buffer is full the transfer pauses until the client has taken it (a slow client slows its own
// transfer only and costs at most kRelayBuffer bytes); a client that goes away cancels it.
// Statuses are passed through; an upstream failure before the head is a 502 (503 when otaproxy
// is stopping) naming it, after the head a closed connection (a truncated response).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "otaproxy/server/counters.h"
#include "otaproxy/server/response.h"
#include "otaproxy/upstream/upstream_client.h"

namespace ota::proxy {

class Relay : public UpstreamSink {
 public:
  static constexpr size_t kRelayBuffer = 128 << 10;

  // Starts the transfer; the returned source answers the client.
  static std::unique_ptr<ResponseSource> Start(UpstreamClient& upstream,
                                               const UpstreamRequest& request, std::string echo,
                                               bool keep_alive, Counters& counters);

  // UpstreamSink (the upstream client's thread).
  bool OnHead(const UpstreamHead& head) override;
  Take OnBody(std::string_view data) override;
  void OnDone(absl::Status status, bool head_delivered) override;

 private:
  class Source;
  explicit Relay(Counters& counters) : counters_(counters) {}

  Counters& counters_;
  std::mutex mu_;
  UpstreamHead head_;
  bool head_known_ = false;
  std::string buffer_;
  bool paused_ = false;
  bool done_ = false;
  absl::Status status_;
  Waker waiter_;  // loop == nullptr: none registered
};

}  // namespace ota::proxy
