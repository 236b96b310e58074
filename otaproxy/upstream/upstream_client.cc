#include "otaproxy/upstream/upstream_client.h"

#include <curl/curl.h>

#include <chrono>
#include <future>
#include <utility>

#include "absl/strings/match.h"
#include "common/log/log.h"
#include "common/util/strings.h"

namespace ota::proxy {
namespace {

constexpr size_t kMaxIdleHandles = 64;
// The transfer thread wakes at least this often (curl's own timers: connect and stall
// timeouts) even when nothing happens.
constexpr int kPollTimeoutMs = 1000;

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

}  // namespace

struct UpstreamClient::Transfer {
  TransferId id = 0;
  ota::http::UniqueEasy easy;
  UpstreamRequest request;
  std::shared_ptr<UpstreamSink> sink;
  bool limited = false;
  ota::http::UniqueSlist headers;
  UpstreamHead head;
  bool head_delivered = false;
  bool aborted_by_sink = false;
  bool got_body = false;  // since the last OnBurstEnd
  std::vector<TransferId>* got_body_list = nullptr;
  char error[CURL_ERROR_SIZE] = {};

  bool DeliverHead() {
    if (head_delivered) return true;
    head_delivered = true;
    long code = 0;
    curl_easy_getinfo(easy.get(), CURLINFO_RESPONSE_CODE, &code);
    head.status = static_cast<int>(code);
    curl_off_t length = -1;
    curl_easy_getinfo(easy.get(), CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
    if (length >= 0) head.content_length = static_cast<uint64_t>(length);
    if (!sink->OnHead(head)) {
      aborted_by_sink = true;
      return false;
    }
    return true;
  }

  static size_t OnHeader(char* data, size_t size, size_t count, void* user) {
    auto* t = static_cast<Transfer*>(user);
    const std::string_view line(data, size * count);
    if (line.starts_with("HTTP/")) {
      // A new response (after a redirect or 100-continue): forget the previous one's headers.
      t->head = UpstreamHead{};
    } else if (HeaderNameIs(line, "content-type")) {
      t->head.content_type = HeaderValue(line, 12);
    } else if (HeaderNameIs(line, "content-encoding")) {
      t->head.content_encoding = HeaderValue(line, 16);
    } else if (HeaderNameIs(line, "ota-file-cache-control")) {
      t->head.cache_control = HeaderValue(line, 22);
    } else if (HeaderNameIs(line, "x-cache")) {
      t->head.cdn_hit = absl::StartsWithIgnoreCase(HeaderValue(line, 7), "hit");
    } else if (HeaderNameIs(line, "content-range")) {
      t->head.content_range = HeaderValue(line, 13);
    } else if (HeaderNameIs(line, "etag")) {
      t->head.etag = HeaderValue(line, 4);
    } else if (HeaderNameIs(line, "last-modified")) {
      t->head.last_modified = HeaderValue(line, 13);
    } else if (HeaderNameIs(line, "accept-ranges")) {
      t->head.accept_ranges = HeaderValue(line, 13);
    }
    return size * count;
  }

  static size_t OnBody(char* data, size_t size, size_t count, void* user) {
    auto* t = static_cast<Transfer*>(user);
    if (!t->DeliverHead()) return 0;
    switch (t->sink->OnBody(std::string_view(data, size * count))) {
      case UpstreamSink::Take::kTaken:
        if (!std::exchange(t->got_body, true)) t->got_body_list->push_back(t->id);
        return size * count;
      case UpstreamSink::Take::kPause:
        return CURL_WRITEFUNC_PAUSE;
      case UpstreamSink::Take::kAbort:
        break;
    }
    t->aborted_by_sink = true;
    return 0;
  }
};

UpstreamClient::UpstreamClient(UpstreamConfig config)
    : config_(std::move(config)),
      easy_options_{.protocols = "http,https",
                    .proxy = config_.proxy,
                    .ca_bundle = config_.ca_bundle,
                    .connect_timeout_s = config_.connect_timeout_s,
                    .low_speed_timeout_s = config_.low_speed_timeout_s,
                    .max_redirects = config_.max_redirects,
                    // Each transfer (and each idle handle) keeps this buffer allocated: larger
                    // ones cost RSS, not speed.
                    .buffer_bytes = 64L * 1024,
                    .user_agent = "otaproxy",
                    .path_as_is = true} {
  ota::http::CurlGlobalInitOnce();
  multi_.reset(curl_multi_init());
  thread_ = std::thread([this] { Run(); });
}

UpstreamClient::~UpstreamClient() { Shutdown(); }

UpstreamClient::TransferId UpstreamClient::Start(UpstreamRequest request,
                                                 std::shared_ptr<UpstreamSink> sink, bool limited) {
  const TransferId id = next_id_.fetch_add(1);
  Post(Command{.kind = Command::Kind::kStart,
               .id = id,
               .request = std::move(request),
               .sink = std::move(sink),
               .limited = limited});
  return id;
}

void UpstreamClient::Resume(TransferId id) {
  Post(Command{
      .kind = Command::Kind::kResume, .id = id, .request = {}, .sink = nullptr, .limited = false});
}

void UpstreamClient::Cancel(TransferId id) {
  Post(Command{
      .kind = Command::Kind::kCancel, .id = id, .request = {}, .sink = nullptr, .limited = false});
}

void UpstreamClient::Post(Command command) {
  {
    std::lock_guard lock(mu_);
    if (!shutdown_) {
      commands_.push_back(std::move(command));
      if (commands_.size() == 1 && multi_) curl_multi_wakeup(multi_.get());
      return;
    }
  }
  if (command.kind == Command::Kind::kStart) {
    command.sink->OnDone(absl::CancelledError(StrCat("fetching ", command.request.url,
                                                     ": the upstream client is shut down")),
                         false);
  }
}

void UpstreamClient::Shutdown() {
  std::lock_guard shutdown_lock(shutdown_mu_);
  {
    std::lock_guard lock(mu_);
    if (shutdown_) return;
    shutdown_ = true;
    if (multi_) curl_multi_wakeup(multi_.get());
  }
  if (thread_.joinable()) thread_.join();
}

ota::http::UniqueEasy UpstreamClient::AcquireEasy() {
  if (!idle_easy_.empty()) {
    ota::http::UniqueEasy easy = std::move(idle_easy_.back());
    idle_easy_.pop_back();
    curl_easy_reset(easy.get());
    return easy;
  }
  return ota::http::UniqueEasy(curl_easy_init());
}

void UpstreamClient::StartTransfer(Command& command) {
  if (command.limited && config_.max_limited_transfers != 0 &&
      limited_running_ >= config_.max_limited_transfers) {
    limited_waiting_.push_back(std::move(command));
    return;
  }
  auto t = std::make_unique<Transfer>();
  t->id = command.id;
  t->request = std::move(command.request);
  t->sink = std::move(command.sink);
  t->limited = command.limited;
  t->got_body_list = &got_body_;
  t->easy = AcquireEasy();
  if (!t->easy) {
    t->sink->OnDone(absl::InternalError("curl_easy_init failed"), false);
    return;
  }
  CURL* curl = t->easy.get();
  auto add_header = [&t](const std::string& line) {
    t->headers.reset(curl_slist_append(t->headers.release(), line.c_str()));
  };
  if (!t->request.cookie.empty()) add_header(StrCat("Cookie: ", t->request.cookie));
  if (!t->request.authorization.empty()) {
    add_header(StrCat("Authorization: ", t->request.authorization));
  }
  if (!t->request.cache_control.empty()) {
    add_header(StrCat("Ota-File-Cache-Control: ", t->request.cache_control));
  }
  if (!t->request.range.empty()) add_header(StrCat("Range: ", t->request.range));
  if (!t->request.if_range.empty()) add_header(StrCat("If-Range: ", t->request.if_range));
  // No "Accept: */*" noise; the server picks the representation.
  add_header("Accept:");

  ota::http::ApplyEasyOptions(curl, easy_options_);
  curl_easy_setopt(curl, CURLOPT_URL, t->request.url.c_str());
  ota::http::SetRedirectPolicy(curl, t->request.url);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, t->headers.get());
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, t->error);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &Transfer::OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, t.get());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Transfer::OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, t.get());
  // The id, not the pointer, round-trips through curl: a finished transfer is looked up by it.
  // NOLINTNEXTLINE(performance-no-int-to-ptr)
  curl_easy_setopt(curl, CURLOPT_PRIVATE, reinterpret_cast<void*>(t->id));
  const CURLMcode rc = curl_multi_add_handle(multi_.get(), curl);
  if (rc != CURLM_OK) {
    t->sink->OnDone(
        absl::InternalError(StrCat("fetching ", t->request.url,
                                   ": curl_multi_add_handle: ", curl_multi_strerror(rc))),
        false);
    return;
  }
  const TransferId id = t->id;
  if (t->limited) limited_running_++;
  transfers_.emplace(id, std::move(t));
}

void UpstreamClient::FinishTransfer(TransferId id, absl::Status status) {
  auto it = transfers_.find(id);
  if (it == transfers_.end()) return;
  std::unique_ptr<Transfer> t = std::move(it->second);
  transfers_.erase(it);
  if (t->got_body) t->sink->OnBurstEnd();
  curl_multi_remove_handle(multi_.get(), t->easy.get());
  curl_easy_setopt(t->easy.get(), CURLOPT_HTTPHEADER, nullptr);
  curl_easy_setopt(t->easy.get(), CURLOPT_ERRORBUFFER, nullptr);
  // Only a handle whose transfer ended well is reused; the rest start afresh.
  if (status.ok() && idle_easy_.size() < kMaxIdleHandles) idle_easy_.push_back(std::move(t->easy));
  t->sink->OnDone(std::move(status), t->head_delivered);
  if (t->limited) {
    limited_running_--;
    // The next one waiting takes the place (unless it is cancelled or failed to start, then
    // the one after it).
    while (!limited_waiting_.empty() && limited_running_ < config_.max_limited_transfers) {
      Command next = std::move(limited_waiting_.front());
      limited_waiting_.pop_front();
      StartTransfer(next);
    }
  }
}

void UpstreamClient::FinishCompleted(TransferId id, int curl_code) {
  auto it = transfers_.find(id);
  if (it == transfers_.end()) return;
  Transfer& t = *it->second;
  auto rc = static_cast<CURLcode>(curl_code);
  if (rc == CURLE_OK && !t.DeliverHead()) rc = CURLE_WRITE_ERROR;
  absl::Status status;
  if (rc == CURLE_OK) {
    status = absl::OkStatus();
  } else if (t.aborted_by_sink) {
    status = absl::CancelledError(StrCat("fetching ", t.request.url, ": cancelled"));
  } else {
    status = absl::UnavailableError(StrCat(
        "fetching ", t.request.url, config_.proxy.empty() ? "" : StrCat(" via ", config_.proxy),
        ": ", ota::http::DescribeCurlFailure(t.easy.get(), rc, t.error)));
  }
  FinishTransfer(id, std::move(status));
}

void UpstreamClient::EndBursts() {
  std::vector<TransferId> ids;
  ids.swap(got_body_);
  for (TransferId id : ids) {
    auto it = transfers_.find(id);
    if (it == transfers_.end() || !it->second->got_body) continue;
    it->second->got_body = false;
    it->second->sink->OnBurstEnd();
  }
}

void UpstreamClient::Run() {
  if (!multi_) {
    log::Error("curl_multi_init failed: every upstream transfer fails");
  }
  std::vector<Command> commands;
  while (true) {
    bool shutdown;
    {
      std::lock_guard lock(mu_);
      commands.swap(commands_);
      shutdown = shutdown_;
    }
    for (Command& c : commands) {
      switch (c.kind) {
        case Command::Kind::kStart:
          if (!multi_) {
            c.sink->OnDone(absl::InternalError("curl_multi_init failed"), false);
          } else {
            StartTransfer(c);
          }
          break;
        case Command::Kind::kResume:
          if (auto it = transfers_.find(c.id); it != transfers_.end()) {
            // May deliver the held bytes at once (the sink may pause again).
            curl_easy_pause(it->second->easy.get(), CURLPAUSE_CONT);
            EndBursts();
          }
          break;
        case Command::Kind::kCancel:
          if (auto it = transfers_.find(c.id); it != transfers_.end()) {
            FinishTransfer(c.id, absl::CancelledError(
                                     StrCat("fetching ", it->second->request.url, ": cancelled")));
          } else {
            for (auto w = limited_waiting_.begin(); w != limited_waiting_.end(); ++w) {
              if (w->id != c.id) continue;
              Command waiting = std::move(*w);
              limited_waiting_.erase(w);
              waiting.sink->OnDone(
                  absl::CancelledError(StrCat("fetching ", waiting.request.url, ": cancelled")),
                  false);
              break;
            }
          }
          break;
      }
    }
    commands.clear();
    if (shutdown || !multi_) break;
    int running = 0;
    curl_multi_perform(multi_.get(), &running);
    EndBursts();
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi_.get(), &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      void* priv = nullptr;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
      FinishCompleted(reinterpret_cast<TransferId>(priv), msg->data.result);
    }
    curl_multi_poll(multi_.get(), nullptr, 0, kPollTimeoutMs, nullptr);
  }
  // Shut down: every transfer still running is cancelled; later Start()s fail at once (Post).
  std::vector<TransferId> ids;
  ids.reserve(transfers_.size());
  for (const auto& [id, t] : transfers_) ids.push_back(id);
  // None of those waiting may start now.
  for (Command& c : limited_waiting_) commands.push_back(std::move(c));
  limited_waiting_.clear();
  for (TransferId id : ids) {
    FinishTransfer(id, absl::CancelledError("otaproxy is stopping"));
  }
  {
    std::lock_guard lock(mu_);
    for (Command& c : commands_) commands.push_back(std::move(c));
    commands_.clear();
  }
  for (Command& c : commands) {
    if (c.kind == Command::Kind::kStart) {
      c.sink->OnDone(absl::CancelledError(
                         StrCat("fetching ", c.request.url, ": the upstream client is shut down")),
                     false);
    }
  }
  idle_easy_.clear();
}

absl::Status UpstreamClient::Fetch(const UpstreamRequest& request,
                                   const UpstreamCallbacks& callbacks, bool* head_delivered) {
  class SyncSink : public UpstreamSink {
   public:
    explicit SyncSink(const UpstreamCallbacks& callbacks) : callbacks_(callbacks) {}
    bool OnHead(const UpstreamHead& head) override { return callbacks_.on_head(head); }
    Take OnBody(std::string_view data) override {
      return callbacks_.on_body(data) ? Take::kTaken : Take::kAbort;
    }
    void OnDone(absl::Status status, bool head_delivered) override {
      head_delivered_ = head_delivered;
      done_.set_value(std::move(status));
    }
    std::future<absl::Status> Result() { return done_.get_future(); }
    bool head_delivered() const { return head_delivered_; }

   private:
    const UpstreamCallbacks& callbacks_;
    std::promise<absl::Status> done_;
    bool head_delivered_ = false;
  };
  auto sink = std::make_shared<SyncSink>(callbacks);
  std::future<absl::Status> result = sink->Result();
  const TransferId id = Start(request, sink);
  bool cancelled = false;
  while (result.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready) {
    if (!cancelled && callbacks.cancel != nullptr && callbacks.cancel->load()) {
      Cancel(id);
      cancelled = true;
    }
  }
  absl::Status status = result.get();
  *head_delivered = sink->head_delivered();  // written before the promise was set
  return status;
}

}  // namespace ota::proxy
