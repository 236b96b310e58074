#include "otaproxy/upstream/upstream_client.h"

#include <curl/curl.h>

#include "common/util/strings.h"

namespace ota::proxy {
namespace {

constexpr size_t kMaxIdleHandles = 64;

std::once_flag curl_init_once;

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
  CURL* curl = nullptr;
  ~Handle() {
    if (curl != nullptr) curl_easy_cleanup(curl);
  }
};

UpstreamClient::UpstreamClient(UpstreamConfig config) : config_(std::move(config)) {
  std::call_once(curl_init_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
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
  h->curl = curl_easy_init();
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
  if (handle->curl == nullptr) return absl::InternalError("curl_easy_init failed");
  CURL* curl = handle->curl;
  // Keeps the handle's connection cache, resets every option.
  curl_easy_reset(curl);

  Transfer transfer;
  transfer.curl = curl;
  transfer.callbacks = &callbacks;
  char error[CURL_ERROR_SIZE] = {};

  curl_slist* headers = nullptr;
  if (!request.cookie.empty()) {
    headers = curl_slist_append(headers, StrCat("Cookie: ", request.cookie).c_str());
  }
  if (!request.authorization.empty()) {
    headers = curl_slist_append(headers, StrCat("Authorization: ", request.authorization).c_str());
  }
  if (!request.cache_control.empty()) {
    headers = curl_slist_append(headers,
                                StrCat("Ota-File-Cache-Control: ", request.cache_control).c_str());
  }
  // No "Accept: */*" noise; the server picks the representation.
  headers = curl_slist_append(headers, "Accept:");

  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl, CURLOPT_MAXREDIRS, static_cast<long>(config_.max_redirects));
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, static_cast<long>(config_.connect_timeout_s));
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, static_cast<long>(config_.low_speed_timeout_s));
  // Each pooled handle keeps this buffer allocated: larger ones cost RSS, not speed.
  curl_easy_setopt(curl, CURLOPT_BUFFERSIZE, 64L * 1024);
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "otaproxy");
  if (!config_.proxy.empty()) {
    curl_easy_setopt(curl, CURLOPT_PROXY, config_.proxy.c_str());
  } else {
    curl_easy_setopt(curl, CURLOPT_PROXY, "");  // ignore http_proxy from the environment
  }
  if (!config_.ca_bundle.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, config_.ca_bundle.c_str());
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
  curl_slist_free_all(headers);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, nullptr);
  *head_delivered = transfer.head_delivered;
  if (rc == CURLE_OK) {
    Release(std::move(handle));
    return absl::OkStatus();
  }
  // A broken transfer may leave the connection in an unknown state: drop the handle.
  if (transfer.aborted_by_callback) {
    return absl::CancelledError(StrCat("fetching ", request.url, ": cancelled"));
  }
  std::string reason = error[0] != '\0' ? std::string(error) : curl_easy_strerror(rc);
  return absl::UnavailableError(StrCat("fetching ", request.url,
                                       config_.proxy.empty() ? "" : StrCat(" via ", config_.proxy),
                                       ": ", reason));
}

}  // namespace ota::proxy
