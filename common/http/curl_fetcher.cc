// CurlFetcher: Fetcher over two curl sessions (curl_session.h), one for DownloadAll and one for
// Get, each driven by a TransferLoop (transfer_loop.h) into body sinks (body_sink.h).
#include "common/http/curl_fetcher.h"

#include <strings.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "common/crypto/sha256.h"
#include "common/http/body_sink.h"
#include "common/http/curl_easy.h"
#include "common/http/curl_session.h"
#include "common/http/transfer_loop.h"
#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::http {
namespace {

constexpr char kUserAgent[] = "otaclient-cpp/0.1";
// curl's receive buffer: large reads keep the syscall count low on big files.
constexpr long kReceiveBufferBytes = 256L * 1024;

// Upstream behaviour: with a proxy, https URLs are requested as plain http absolute-form
// requests and the proxy does TLS upstream (no CONNECT tunnels).
std::string RequestUrl(const std::string& url, bool via_proxy) {
  constexpr std::string_view kHttps = "https://";
  if (via_proxy && url.size() >= kHttps.size() &&
      ::strncasecmp(url.c_str(), kHttps.data(), kHttps.size()) == 0) {
    return StrCat("http://", std::string_view(url).substr(kHttps.size()));
  }
  return url;
}

std::string CookieHeaderValue(const std::map<std::string, std::string>& cookies) {
  std::string out;
  for (const auto& [name, value] : cookies) {
    if (!out.empty()) out.append("; ");
    StrAppend(&out, name, "=", value);
  }
  return out;
}

EasyOptions EasyOptionsFor(const FetcherConfig& config) {
  return {.protocols = "http,https,file",
          .proxy = config.proxy,
          .ca_bundle = config.ca_bundle,
          .connect_timeout_s = config.connect_timeout_s,
          .low_speed_timeout_s = config.low_speed_timeout_s,
          .max_redirects = 5,
          .buffer_bytes = kReceiveBufferBytes,
          .user_agent = kUserAgent,
          .path_as_is = false};
}

class CurlFetcher final : public Fetcher {
 public:
  explicit CurlFetcher(const FetcherConfig& config)
      : config_(config),
        bulk_(EasyOptionsFor(config), CookieHeaderValue(config.cookies),
              static_cast<size_t>(std::max(config.max_parallel, 1))),
        small_(EasyOptionsFor(config), CookieHeaderValue(config.cookies),
               static_cast<size_t>(std::max(config.max_parallel, 1))) {
    init_status_ = bulk_.Init();
    if (init_status_.ok()) init_status_ = small_.Init();
  }

  absl::StatusOr<std::string> Get(const std::string& url, const GetOptions& options) override {
    OTA_RETURN_IF_ERROR(init_status_);
    std::lock_guard<std::mutex> lock(small_.mutex());
    if (options.expected_sha256 &&
        crypto::ToHex(*options.expected_sha256) == crypto::kEmptySha256Hex) {
      return std::string();
    }
    auto task = std::make_unique<Task>();
    task->url = RequestUrl(url, !config_.proxy.empty());
    if (options.no_cache) {
      task->cache_control = "no_cache";
    } else if (options.expected_sha256 && config_.send_cache_control) {
      // Content pinned by its digest: the proxy may cache it under that key (and verifies it).
      task->cache_control = StrCat("file_sha256=", crypto::ToHex(*options.expected_sha256));
    }
    // Upstream replaces every directive with retry_caching after a mismatch.
    task->cache_control_after_mismatch = "retry_caching";
    auto sink = std::make_unique<MemorySink>(task->url, options);
    MemorySink* body = sink.get();
    task->sink = std::move(sink);

    absl::Status result;
    std::string result_body;
    TransferLoop loop(config_, small_, nullptr, nullptr);
    bool handed_out = false;
    OTA_RETURN_IF_ERROR(loop.Run(
        [&]() -> std::unique_ptr<Task> {
          if (handed_out) return nullptr;
          handed_out = true;
          return std::move(task);
        },
        [&](Task&, const absl::Status& status) {
          result = status;
          if (status.ok()) result_body = body->TakeBody();
          return true;
        }));
    OTA_RETURN_IF_ERROR(result);
    return result_body;
  }

  absl::Status DownloadAll(std::span<const DownloadJob> jobs,
                           const std::function<bool(const DownloadResult&)>& on_done,
                           const TransferObserver& observer, const CancelFlag& cancel) override {
    OTA_RETURN_IF_ERROR(init_status_);
    std::lock_guard<std::mutex> lock(bulk_.mutex());
    const crypto::Sha256Digest empty_sha256 = crypto::Sha256Of("");
    size_t next = 0;
    TransferLoop loop(config_, bulk_, &observer, &cancel);
    return loop.Run(
        [&]() -> std::unique_ptr<Task> {
          if (next >= jobs.size()) return nullptr;
          const DownloadJob& job = jobs[next++];
          auto task = std::make_unique<Task>();
          task->tag = job.tag;
          task->url = RequestUrl(job.url, !config_.proxy.empty());
          if (job.sha256 == empty_sha256) {
            // Upstream never fetches empty files; neither do we.
            FileSink sink(task->url, job.dest, job.sha256, job.size, content::Compression::kNone);
            absl::Status status = sink.BeginAttempt();
            if (status.ok()) status = sink.EndAttempt();
            if (status.ok()) status = sink.Commit();
            task->precompleted = status;
            return task;
          }
          task->cache_control = BlobDirectives(job);
          task->echo_tells_compression = !job.body_sha256.has_value();
          task->cache_control_after_mismatch = task->cache_control.empty()
                                                   ? "retry_caching"
                                                   : StrCat("retry_caching,", task->cache_control);
          task->sink = std::make_unique<FileSink>(task->url, job.dest, job.sha256, job.size,
                                                  job.compression, &bulk_.zstd_pool());
          return task;
        },
        [&](Task& task, const absl::Status& status) {
          DownloadResult result;
          result.tag = task.tag;
          result.status = status;
          result.network_bytes = task.network_bytes;
          result.file_bytes = task.sink ? task.sink->content_bytes() : 0;
          result.retries = task.attempts > 0 ? static_cast<uint32_t>(task.attempts - 1) : 0;
          result.resumes = static_cast<uint32_t>(task.resumes);
          return on_done(result);
        });
  }

 private:
  std::string BlobDirectives(const DownloadJob& job) const {
    if (!config_.send_cache_control) return "";
    if (job.body_sha256) return StrCat("file_sha256=", crypto::ToHex(*job.body_sha256));
    std::string out = StrCat("file_sha256=", crypto::ToHex(job.sha256));
    if (job.compression == content::Compression::kZstd) out.append(",file_compression_alg=zst");
    return out;
  }

  const FetcherConfig config_;
  absl::Status init_status_;
  Session bulk_;   // DownloadAll
  Session small_;  // Get
};

}  // namespace

std::unique_ptr<Fetcher> CreateCurlFetcher(const FetcherConfig& config) {
  return std::make_unique<CurlFetcher>(config);
}

}  // namespace ota::http
