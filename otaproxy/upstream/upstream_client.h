// Fetches one URL from the OTA server or the upper otaproxy with libcurl (blocking, on the
// caller's thread), streaming the response to callbacks. Connections are kept alive in a pool
// of curl handles shared by all callers. Bodies are passed through as received (no
// Content-Encoding decoding). The curl setup (TLS, proxy, timeouts, redirect policy: followed,
// but never from https to http) is otaclient's, common/http/curl_easy.h.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "common/http/curl_easy.h"

namespace ota::proxy {

struct UpstreamConfig {
  std::string proxy;      // "http://host:port" of the upper otaproxy; "" = direct
  std::string ca_bundle;  // PEM for HTTPS; "" = system default
  int connect_timeout_s = 10;
  int low_speed_timeout_s = 30;  // abort when no byte arrived for this long
  int max_redirects = 5;
};

struct UpstreamRequest {
  std::string url;
  std::string cookie;         // Cookie header value as the client sent it; "" = none
  std::string authorization;  // Authorization header value; "" = none
  std::string cache_control;  // Ota-File-Cache-Control to pass on; "" = none
};

struct UpstreamHead {
  int status = 0;
  std::optional<uint64_t> content_length;
  std::string content_type;
  std::string content_encoding;
};

struct UpstreamCallbacks {
  // Once, before the first body byte (or at the end for an empty body). False aborts.
  std::function<bool(const UpstreamHead&)> on_head;
  // Body bytes as they arrive. False aborts.
  std::function<bool(std::string_view)> on_body;
  // When set and true, the transfer is aborted (checked about once a second and per chunk).
  const std::atomic<bool>* cancel = nullptr;
};

class UpstreamClient {
 public:
  explicit UpstreamClient(UpstreamConfig config);
  ~UpstreamClient();
  UpstreamClient(const UpstreamClient&) = delete;
  UpstreamClient& operator=(const UpstreamClient&) = delete;

  // OK when the whole response (any status) was received and delivered. kUnavailable when the
  // server could not be reached, the transfer broke or a redirect was refused (message names
  // the URL, curl's reason and where a redirect led); kCancelled when a callback returned false.
  // `head_delivered` tells whether on_head ran (i.e. whether the client has already been answered).
  absl::Status Fetch(const UpstreamRequest& request, const UpstreamCallbacks& callbacks,
                     bool* head_delivered);

  const UpstreamConfig& config() const { return config_; }

 private:
  struct Handle;
  std::unique_ptr<Handle> Acquire();
  void Release(std::unique_ptr<Handle> handle);

  const UpstreamConfig config_;
  const ota::http::EasyOptions easy_options_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Handle>> idle_;
};

}  // namespace ota::proxy
