#include "common/telemetry/network_transport.h"

#include <condition_variable>
#include <mutex>
#include <utility>
#include <vector>

#include "common/http/curl_easy.h"
#include "common/util/strings.h"
#include "grpcpp/grpcpp.h"
#include "proto/otaclient_iot_logging_server_v1.grpc.pb.h"

namespace ota::telemetry {
namespace {

using Clock = std::chrono::steady_clock;

// How often a wait for gRPC completions looks at the cancel flag.
constexpr std::chrono::milliseconds kCancelPoll{50};

// --- gRPC ---

// Completion state shared with gRPC's callbacks (which may outlive nothing: every wait below
// ends only when all callbacks have run).
struct Completions {
  std::mutex mu;
  std::condition_variable cv;
  size_t pending = 0;
  void Done() {
    std::lock_guard<std::mutex> lock(mu);
    --pending;
    cv.notify_all();
  }
};

// Waits for every callback; once `cancel` is set, cancels the calls still running (they then
// complete at once with CANCELLED).
void AwaitAll(const std::shared_ptr<Completions>& done,
              const std::vector<grpc::ClientContext*>& contexts, const std::atomic<bool>& cancel) {
  std::unique_lock<std::mutex> lock(done->mu);
  while (!done->cv.wait_for(lock, kCancelPoll, [&] { return done->pending == 0; })) {
    if (!cancel.load()) continue;
    lock.unlock();
    for (grpc::ClientContext* context : contexts) context->TryCancel();
    lock.lock();
    done->cv.wait(lock, [&] { return done->pending == 0; });
    break;
  }
}

SendResult FromGrpc(const grpc::Status& status, const PutLogResponse& response) {
  switch (status.error_code()) {
    case grpc::StatusCode::OK:
      break;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return SendResult::kUnconfirmed;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::CANCELLED:
    case grpc::StatusCode::UNIMPLEMENTED:  // not this server (any more): connect again
      return SendResult::kUnreachable;
    default:
      return SendResult::kRejected;
  }
  switch (response.code()) {
    case UNSPECIFIC_ERROR_CODE:  // a server that does not fill the code in
    case NO_FAILURE:
      return SendResult::kDelivered;
    case SERVER_QUEUE_FULL:
      return SendResult::kBusy;
    default:  // NOT_ALLOWED_ECU_ID, NO_MESSAGE, anything newer
      return SendResult::kRejected;
  }
}

LogLevel ToWireLevel(log::Level level) {
  switch (level) {
    case log::Level::kDebug:
      return DEBUG;
    case log::Level::kInfo:
      return INFO;
    case log::Level::kWarning:
      return WARN;
    case log::Level::kError:
      return ERROR;
  }
  return UNSPECIFIC_LOG_LEVEL;
}

class GrpcTransport final : public UploadTransport {
 public:
  GrpcTransport(std::unique_ptr<OTAClientIoTLoggingService::Stub> stub, std::string ecu_id,
                const std::atomic<bool>& cancel)
      : stub_(std::move(stub)), ecu_id_(std::move(ecu_id)), cancel_(cancel) {}

  std::string_view name() const override { return "grpc"; }

  // One call after the other, never several in flight: the server stamps each record with the
  // time it arrives and files them in that order, so concurrent calls would shuffle the log.
  std::vector<SendResult> Send(std::span<const UploadRecord> records) override {
    std::vector<SendResult> results;
    results.reserve(records.size());
    for (const UploadRecord& record : records) {
      if (cancel_.load()) break;  // the rest stay queued
      results.push_back(Call(record));
      // Gone or stalled: the rest stay queued (upload_transport.h).
      if (results.back() == SendResult::kUnreachable ||
          results.back() == SendResult::kUnconfirmed) {
        break;
      }
    }
    return results;
  }

 private:
  SendResult Call(const UploadRecord& record) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + kCallTimeout);
    PutLogRequest request;
    request.set_ecu_id(ecu_id_);
    request.set_log_type(record.type == log::RecordType::kMetrics ? METRICS : LOG);
    request.set_level(ToWireLevel(record.level));
    request.set_message(record.message);
    PutLogResponse response;
    grpc::Status status;
    auto done = std::make_shared<Completions>();
    done->pending = 1;
    stub_->async()->PutLog(&context, &request, &response, [&status, done](const grpc::Status& s) {
      status = s;
      done->Done();
    });
    AwaitAll(done, {&context}, cancel_);
    return FromGrpc(status, response);
  }

  const std::unique_ptr<OTAClientIoTLoggingService::Stub> stub_;
  const std::string ecu_id_;
  const std::atomic<bool>& cancel_;
};

// --- HTTP ---

size_t DiscardBody(char* /*data*/, size_t size, size_t count, void* /*user*/) {
  return size * count;
}

int AbortOnCancel(void* flag, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<const std::atomic<bool>*>(flag)->load() ? 1 : 0;
}

// One keep-alive connection to the HTTP endpoint: POSTs of a body each.
class HttpPoster {
 public:
  HttpPoster(std::string url, const std::atomic<bool>& cancel)
      : url_(std::move(url)), cancel_(cancel) {
    http::CurlGlobalInitOnce();
    easy_.reset(curl_easy_init());
    if (easy_ == nullptr) return;
    http::EasyOptions options;
    options.max_redirects = 0;
    options.connect_timeout_s =
        static_cast<int>(std::chrono::duration_cast<std::chrono::seconds>(kCallTimeout).count());
    options.user_agent = "otaclient";
    http::ApplyEasyOptions(easy_.get(), options);
    curl_slist* headers = curl_slist_append(nullptr, "Content-Type: text/plain; charset=utf-8");
    // No "Expect: 100-continue" wait before larger bodies.
    if (headers != nullptr) headers = curl_slist_append(headers, "Expect:");
    headers_.reset(headers);
    curl_easy_setopt(easy_.get(), CURLOPT_URL, url_.c_str());
    http::SetRedirectPolicy(easy_.get(), url_);
    curl_easy_setopt(easy_.get(), CURLOPT_HTTPHEADER, headers_.get());
    curl_easy_setopt(easy_.get(), CURLOPT_POST, 1L);
    curl_easy_setopt(easy_.get(), CURLOPT_WRITEFUNCTION, DiscardBody);
    curl_easy_setopt(easy_.get(), CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(easy_.get(), CURLOPT_XFERINFOFUNCTION, AbortOnCancel);
    curl_easy_setopt(easy_.get(), CURLOPT_XFERINFODATA, &cancel_);
  }

  // The HTTP status, or nullopt with `curl_code` set when no answer came.
  std::optional<long> Post(std::string_view body, std::chrono::milliseconds timeout,
                           CURLcode* curl_code, bool* request_sent) {
    *request_sent = false;
    if (easy_ == nullptr) {
      *curl_code = CURLE_FAILED_INIT;
      return std::nullopt;
    }
    curl_easy_setopt(easy_.get(), CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(easy_.get(), CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(easy_.get(), CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
    *curl_code = curl_easy_perform(easy_.get());
    long request_bytes = 0;
    curl_easy_getinfo(easy_.get(), CURLINFO_REQUEST_SIZE, &request_bytes);
    *request_sent = request_bytes > 0;
    if (*curl_code != CURLE_OK) return std::nullopt;
    long status = 0;
    curl_easy_getinfo(easy_.get(), CURLINFO_RESPONSE_CODE, &status);
    return status;
  }

 private:
  const std::string url_;
  const std::atomic<bool>& cancel_;
  http::UniqueEasy easy_;
  http::UniqueSlist headers_;
};

SendResult FromHttp(std::optional<long> status, CURLcode code, bool request_sent) {
  if (status.has_value()) {
    if (*status >= 200 && *status < 300) return SendResult::kDelivered;
    if (*status == 503 || *status == 429 || *status >= 500) return SendResult::kBusy;
    return SendResult::kRejected;  // 400: empty message or ecu_id not allowed
  }
  // Sent, but no answer in time: it may have arrived.
  if (code == CURLE_OPERATION_TIMEDOUT && request_sent) return SendResult::kUnconfirmed;
  return SendResult::kUnreachable;
}

class HttpTransport final : public UploadTransport {
 public:
  HttpTransport(std::string url, const std::atomic<bool>& cancel)
      : poster_(std::move(url), cancel), cancel_(cancel) {}

  std::string_view name() const override { return "http"; }

  std::vector<SendResult> Send(std::span<const UploadRecord> records) override {
    std::vector<SendResult> results;
    results.reserve(records.size());
    for (const UploadRecord& record : records) {
      if (cancel_.load()) break;
      CURLcode code = CURLE_OK;
      bool sent = false;
      const std::optional<long> status = poster_.Post(record.message, kCallTimeout, &code, &sent);
      results.push_back(FromHttp(status, code, sent));
      // Gone or stalled: the rest stay queued (upload_transport.h).
      if (results.back() == SendResult::kUnreachable ||
          results.back() == SendResult::kUnconfirmed) {
        break;
      }
    }
    return results;
  }

 private:
  HttpPoster poster_;
  const std::atomic<bool>& cancel_;
};

// --- the connector ---

class NetworkConnector final : public UploadConnector {
 public:
  NetworkConnector(UploadEndpoints endpoints, std::string ecu_id)
      : endpoints_(std::move(endpoints)), ecu_id_(std::move(ecu_id)) {}

  bool ServerAnswers(const std::atomic<bool>& cancel) override {
    // As the deployed client: a POST with an empty body (the server answers 400), because old
    // servers do not take HEAD. Any HTTP answer means "up".
    HttpPoster probe(endpoints_.http_url, cancel);
    CURLcode code = CURLE_OK;
    bool sent = false;
    return probe.Post("", kProbeTimeout, &code, &sent).has_value();
  }

  std::unique_ptr<UploadTransport> Connect(const std::atomic<bool>& cancel) override {
    if (!endpoints_.grpc_target.empty()) {
      grpc::ChannelArguments args;
      args.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
      // A lost server is noticed by the uploader, which then makes a new channel; keep gRPC's
      // own reconnect backoff short in case a call races the restart.
      args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
      args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
      auto stub = OTAClientIoTLoggingService::NewStub(grpc::CreateCustomChannel(
          endpoints_.grpc_target, grpc::InsecureChannelCredentials(), args));
      if (CheckAnswers(*stub, cancel)) {
        return std::make_unique<GrpcTransport>(std::move(stub), ecu_id_, cancel);
      }
    }
    return std::make_unique<HttpTransport>(endpoints_.http_url, cancel);
  }

  std::string Describe() const override {
    if (endpoints_.grpc_target.empty()) return StrCat("http ", endpoints_.http_url);
    return StrCat("grpc ", endpoints_.grpc_target, ", http ", endpoints_.http_url);
  }

 private:
  static bool CheckAnswers(OTAClientIoTLoggingService::Stub& stub,
                           const std::atomic<bool>& cancel) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + kCheckTimeout);
    HealthCheckRequest request;
    HealthCheckResponse response;
    grpc::Status status;
    auto done = std::make_shared<Completions>();
    done->pending = 1;
    stub.async()->Check(&context, &request, &response, [&status, done](const grpc::Status& s) {
      status = s;
      done->Done();
    });
    AwaitAll(done, {&context}, cancel);
    return status.ok();
  }

  const UploadEndpoints endpoints_;
  const std::string ecu_id_;
};

}  // namespace

std::unique_ptr<UploadConnector> CreateNetworkConnector(UploadEndpoints endpoints,
                                                        std::string ecu_id) {
  return std::make_unique<NetworkConnector>(std::move(endpoints), std::move(ecu_id));
}

}  // namespace ota::telemetry
