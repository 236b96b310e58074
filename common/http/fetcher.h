// The HTTP seam. The update engine and the image loader talk only to this interface; the libcurl
// implementation (curl_fetcher.h) is the one real part, tests use it against real nginx.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/content/compression.h"
#include "common/crypto/sha256.h"

namespace ota::http {

// Set by another thread to stop transfers promptly; in-flight requests are cancelled.
using CancelFlag = std::atomic<bool>;

struct FetcherConfig {
  // Proxy URL ("http://host:port"), empty = direct. With a proxy, https:// URLs are requested as
  // http:// absolute-form requests (the proxy does TLS upstream), as the existing system does.
  std::string proxy;
  std::string ca_bundle;  // PEM file for HTTPS verification; empty = system default
  // Cookies as a JSON object string from UpdateRequestEcu.cookies ("" or "{}" = none).
  std::map<std::string, std::string> cookies;
  int max_parallel = 16;        // transfers in flight
  int max_attempts = 6;         // per file, including the first
  int backoff_initial_ms = 50;  // doubled per attempt
  int backoff_max_ms = 5000;
  int connect_timeout_s = 10;
  int low_speed_timeout_s = 30;  // abort a transfer slower than 1 byte/s for this long
  // Cap on the bytes per second received by all transfers of one call together (DownloadAll, or
  // Get); 0 = unlimited. Shared equally by the transfers in flight, re-shared whenever one starts
  // or ends.
  uint64_t max_download_rate = 0;
  // A transfer cut mid-body continues with `Range: bytes=<received>-` (If-Range when the first
  // response had an ETag or Last-Modified) instead of starting over. Off: every retry from byte 0.
  bool resume = true;
  // Send `Ota-File-Cache-Control: file_sha256=<hex>[,file_compression_alg=zst]` with blob
  // requests (otaproxy's cache key; the sha256 is of the uncompressed file) and put
  // `retry_caching,` in front after a hash mismatch. otaclient sets it exactly when it downloads
  // through a proxy (otaclient/service/download_proxy.h). Off: blobs carry no header, their
  // retries after a mismatch `retry_caching`. Get() sends `no_cache` unless GetOptions says
  // otherwise.
  bool send_cache_control = false;
  // Optional, must outlive the fetcher: once set, every call (Get and DownloadAll) stops within
  // about 100 ms, in-flight transfers are dropped and the call returns kCancelled. Lets an owner
  // cancel calls made by code it does not control (the image loader's Get()s).
  const CancelFlag* cancel = nullptr;
};

// Parses UpdateRequestEcu.cookies. "" and "{}" mean no cookies; anything else must be a JSON
// object of strings. Error: kInvalidArgument naming the problem.
absl::StatusOr<std::map<std::string, std::string>> ParseCookiesJson(std::string_view json);

struct GetOptions {
  // When set, the body must hash to this; a mismatch is retried with retry_caching.
  std::optional<crypto::Sha256Digest> expected_sha256;
  size_t max_bytes = 256u << 20;  // refuse bodies larger than this
  // Send Ota-File-Cache-Control: no_cache. When false, a body pinned by expected_sha256 is asked
  // for like a blob (file_sha256=<hex>, with send_cache_control): a proxy caches and verifies it.
  bool no_cache = true;
};

struct DownloadJob {
  std::string url;
  std::filesystem::path
      dest;  // final path; bytes go to a temp name beside it, renamed when verified
  crypto::Sha256Digest sha256{};  // of the uncompressed content; always verified
  std::optional<uint64_t> size;   // uncompressed size when known; verified too
  content::Compression compression = content::Compression::kNone;  // kZstd: body is decoded
  // The digest of the body as stored (a content-addressed blob whose name is its own sha256,
  // e.g. an OTA image v1 zstd blob): when set, a proxy is asked with file_sha256=<this> and no
  // compression, so it caches and verifies the stored bytes; `sha256` still checks the content.
  std::optional<crypto::Sha256Digest> body_sha256;
  uint64_t tag = 0;  // caller's id, echoed in the result
};

struct DownloadResult {
  uint64_t tag = 0;
  absl::Status status;
  uint64_t network_bytes = 0;  // bytes received on the wire (all attempts)
  uint64_t file_bytes = 0;     // bytes written (uncompressed)
  uint32_t retries = 0;        // attempts beyond the first
  uint32_t resumes = 0;        // attempts that continued a cut body with a 206 (Range)
};

// Byte-level progress for live status (called from the transfer thread, keep it cheap).
struct TransferObserver {
  std::function<void(uint64_t network_bytes)> on_bytes;  // bytes just received (a delta)
};

class Fetcher {
 public:
  virtual ~Fetcher() = default;

  // Fetches a small resource into memory (metadata, certificate, list files). kCancelled when
  // FetcherConfig::cancel was set.
  virtual absl::StatusOr<std::string> Get(const std::string& url, const GetOptions& options) = 0;

  // Downloads every job, up to max_parallel at once over reused connections. `on_done` is called
  // once per job as it finishes (success or final failure), never concurrently with itself.
  // Returns OK when all jobs were attempted (per-job failures are in the results), kCancelled
  // when `cancel` (or FetcherConfig::cancel) was set; it is looked at least every 100 ms, also
  // while a transfer stalls or waits for a retry. Stops early (kCancelled-free) only through
  // `on_done` returning false.
  virtual absl::Status DownloadAll(std::span<const DownloadJob> jobs,
                                   const std::function<bool(const DownloadResult&)>& on_done,
                                   const TransferObserver& observer, const CancelFlag& cancel) = 0;
};

}  // namespace ota::http
