#include "otaproxy/upstream/upstream_client.h"

#include <curl/curl.h>

#include <utility>

#include "common/util/strings.h"

namespace ota::proxy {
namespace {

constexpr size_t kMaxIdleHandles = 64;

bool HeaderNameIs(std::string_view line, std::string_view name) {
  if (line.size() <= name.size() || line[name.size()] != ':') return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = line[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != name[i]) return false;
  }
  return true;
}

std::string HeaderValue(std::string_view line, size_t name_size) {
  std::string_view v = line.substr(name_size + 1);
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' ')) {
    v.remove_suffix(1);
  }
  return std::string(v);
}

struct Transfer {
  CURL* curl = nullptr;
  const UpstreamCallbacks* callbacks = nullptr;
  UpstreamHead head;
  bool head_delivered = false;
  bool aborted_by_callback = false;

  bool DeliverHead() {
    if (head_delivered) return true;
    head_delivered = true;
    long code = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    head.status = static_cast<int>(code);
    curl_off_t length = -1;
    curl_easy_getinfo(curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
    if (length >= 0) head.content_length = static_cast<uint64_t>(length);
    if (!callbacks->on_head(head)) {
      aborted_by_callback = true;
      return false;
    }
    return true;
  }
};

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::string_view line(data, size * count);
  if (line.starts_with("HTTP/")) {
    // A new response (after a redirect or 100-continue): forget the previous one's headers.
    t->head = UpstreamHead{};
  } else if (HeaderNameIs(line, "content-type")) {
    t->head.content_type = HeaderValue(line, 12);
  } else if (HeaderNameIs(line, "content-encoding")) {
    t->head.content_encoding = HeaderValue(line, 16);
  }
  return size * count;
}

int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  if (t->callbacks->cancel != nullptr && t->callbacks->cancel->load()) {
    t->aborted_by_callback = true;
    return 1;
  }
  return 0;
}

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  if (!t->DeliverHead()) return 0;
  if (!t->callbacks->on_body(std::string_view(data, size * count))) {
    t->aborted_by_callback = true;
    return 0;
  }
  return size * count;
}

}  // namespace

struct UpstreamClient::Handle {
  ota::http::UniqueEasy curl;
};

UpstreamClient::UpstreamClient(UpstreamConfig config)
    : config_(std::move(config)),
      easy_options_{.protocols = "http,https",
                    .proxy = config_.proxy,
                    .ca_bundle = config_.ca_bundle,
                    .connect_timeout_s = config_.connect_timeout_s,
                    .low_speed_timeout_s = config_.low_speed_timeout_s,
                    .max_redirects = config_.max_redirects,
                    // Each pooled handle keeps this buffer allocated: larger ones cost RSS, not
                    // speed.
                    .buffer_bytes = 64L * 1024,
                    .user_agent = "otaproxy",
                    .path_as_is = true} {
  ota::http::CurlGlobalInitOnce();
}

UpstreamClient::~UpstreamClient() = default;

std::unique_ptr<UpstreamClient::Handle> UpstreamClient::Acquire() {
  {
    std::lock_guard lock(mu_);
    if (!idle_.empty()) {
      std::unique_ptr<Handle> h = std::move(idle_.back());
      idle_.pop_back();
      return h;
    }
  }
  auto h = std::make_unique<Handle>();
  h->curl.reset(curl_easy_init());
  return h;
}

void UpstreamClient::Release(std::unique_ptr<Handle> handle) {
  std::lock_guard lock(mu_);
  if (idle_.size() < kMaxIdleHandles) idle_.push_back(std::move(handle));
}

absl::Status UpstreamClient::Fetch(const UpstreamRequest& request,
                                   const UpstreamCallbacks& callbacks, bool* head_delivered) {
  *head_delivered = false;
  std::unique_ptr<Handle> handle = Acquire();
  if (!handle->curl) return absl::InternalError("curl_easy_init failed");
  CURL* curl = handle->curl.get();
  // Keeps the handle's connection cache, resets every option.
  curl_easy_reset(curl);

  Transfer transfer;
  transfer.curl = curl;
  transfer.callbacks = &callbacks;
  char error[CURL_ERROR_SIZE] = {};

  ota::http::UniqueSlist headers;
  auto add_header = [&headers](const std::string& line) {
    headers.reset(curl_slist_append(headers.release(), line.c_str()));
  };
  if (!request.cookie.empty()) add_header(StrCat("Cookie: ", request.cookie));
  if (!request.authorization.empty()) add_header(StrCat("Authorization: ", request.authorization));
  if (!request.cache_control.empty()) {
    add_header(StrCat("Ota-File-Cache-Control: ", request.cache_control));
  }
  // No "Accept: */*" noise; the server picks the representation.
  add_header("Accept:");

  ota::http::ApplyEasyOptions(curl, easy_options_);
  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  ota::http::SetRedirectPolicy(curl, request.url);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &transfer);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &transfer);
  if (callbacks.cancel != nullptr) {
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, OnProgress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &transfer);
  }

  CURLcode rc = curl_easy_perform(curl);
  if (rc == CURLE_OK && !transfer.DeliverHead()) rc = CURLE_WRITE_ERROR;
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, nullptr);
  headers.reset();
  *head_delivered = transfer.head_delivered;
  if (rc == CURLE_OK) {
    Release(std::move(handle));
    return absl::OkStatus();
  }
  // A broken transfer may leave the connection in an unknown state: drop the handle.
  if (transfer.aborted_by_callback) {
    return absl::CancelledError(StrCat("fetching ", request.url, ": cancelled"));
  }
  return absl::UnavailableError(StrCat("fetching ", request.url,
                                       config_.proxy.empty() ? "" : StrCat(" via ", config_.proxy),
                                       ": ", ota::http::DescribeCurlFailure(curl, rc, error)));
}

}  // namespace ota::proxy
