#include "otaclient/ecu/secondary_transport.h"

#include <condition_variable>
#include <memory>
#include <mutex>
#include <utility>

#include "common/log/log.h"
#include "common/util/strings.h"
#include "grpcpp/grpcpp.h"
#include "proto/otaclient_v2.grpc.pb.h"

namespace ota::ecu {
namespace {

// Reconnect quickly: a secondary that rebooted (or re-executed on its new slot) must be seen
// again within about a second, not after gRPC's default backoff of up to two minutes.
constexpr int kInitialReconnectBackoffMs = 100;
constexpr int kMaxReconnectBackoffMs = 1000;
// A Status answer lists a whole subtree with failure reasons: far more room than a request
// (1 MiB), but bounded.
constexpr int kMaxAnswerBytes = 8 << 20;

class GrpcSecondaryTransport final : public SecondaryTransport {
 public:
  GrpcSecondaryTransport(const config::SecondaryEcu& child,
                         const std::shared_ptr<grpc::ChannelCredentials>& credentials) {
    grpc::ChannelArguments args;
    // Vehicle-internal addresses never go through an http_proxy from the environment.
    args.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, kInitialReconnectBackoffMs);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, kInitialReconnectBackoffMs);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, kMaxReconnectBackoffMs);
    // A huge answer is that secondary's failure (the call fails), not memory taken from us.
    args.SetMaxReceiveMessageSize(kMaxAnswerBytes);
    // With TLS, the child's certificate must name the address dialled (ecu_info ip_addr) as an
    // IP subjectAltName: there is no target name override.
    channel_ = grpc::CreateCustomChannel(
        SecondaryTarget(child),
        credentials != nullptr ? credentials : grpc::InsecureChannelCredentials(), args);
    stub_ = OtaClientV2::OtaClientService::NewStub(channel_);
  }

  // Waits until every call's context is gone: a ClientContext holds a channel reference, and
  // gRPC 1.51 breaks (shared callback queue, see grpc/grpc#32584) when the last reference to a
  // channel is dropped on its callback thread. Calls have deadlines, so this is short.
  ~GrpcSecondaryTransport() override {
    std::unique_lock<std::mutex> lock(tracker_->mu);
    if (!tracker_->cv.wait_for(lock, std::chrono::seconds(60),
                               [&] { return tracker_->pending == 0; })) {
      log::Error("secondary transport destroyed with calls pending",
                 {{"pending", std::to_string(tracker_->pending)}});
    }
  }

  void Update(const OtaClientV2::UpdateRequest& request, std::chrono::milliseconds timeout,
              Done<OtaClientV2::UpdateResponse> done) override {
    Call(&OtaClientV2::OtaClientService::Stub::async_interface::Update, request, timeout,
         std::move(done));
  }
  void ClientUpdate(const OtaClientV2::UpdateRequest& request, std::chrono::milliseconds timeout,
                    Done<OtaClientV2::UpdateResponse> done) override {
    Call(&OtaClientV2::OtaClientService::Stub::async_interface::ClientUpdate, request, timeout,
         std::move(done));
  }
  void Status(std::chrono::milliseconds timeout, Done<OtaClientV2::StatusResponse> done) override {
    Call(&OtaClientV2::OtaClientService::Stub::async_interface::Status,
         OtaClientV2::StatusRequest(), timeout, std::move(done));
  }
  void Abort(const OtaClientV2::AbortRequest& request, std::chrono::milliseconds timeout,
             Done<OtaClientV2::AbortResponse> done) override {
    Call(&OtaClientV2::OtaClientService::Stub::async_interface::Abort, request, timeout,
         std::move(done));
  }
  void Rollback(const OtaClientV2::RollbackRequest& request, std::chrono::milliseconds timeout,
                Done<OtaClientV2::RollbackResponse> done) override {
    Call(&OtaClientV2::OtaClientService::Stub::async_interface::Rollback, request, timeout,
         std::move(done));
  }

 private:
  // The generated callback-API overload taking std::function<void(grpc::Status)>.
  template <typename Request, typename Response>
  using AsyncMethod = void (OtaClientV2::OtaClientService::Stub::async_interface::*)(
      grpc::ClientContext*, const Request*, Response*, std::function<void(grpc::Status)>);

  template <typename Request, typename Response>
  void Call(AsyncMethod<Request, Response> method, const Request& request,
            std::chrono::milliseconds timeout, Done<Response> done) {
    // Everything the call touches lives until its callback ran.
    struct Pending {
      // First member, so destroyed last: after the context (and its channel reference).
      struct Count {
        explicit Count(std::shared_ptr<Tracker> t) : tracker(std::move(t)) {
          std::lock_guard<std::mutex> lock(tracker->mu);
          ++tracker->pending;
        }
        Count(const Count&) = delete;
        Count& operator=(const Count&) = delete;
        ~Count() {
          std::lock_guard<std::mutex> lock(tracker->mu);
          --tracker->pending;
          tracker->cv.notify_all();
        }
        std::shared_ptr<Tracker> tracker;
      };
      explicit Pending(std::shared_ptr<Tracker> tracker) : count(std::move(tracker)) {}
      Count count;
      grpc::ClientContext context;
      Request request;
      Response response;
      Done<Response> done;
    };
    auto pending = std::make_shared<Pending>(tracker_);
    pending->request = request;
    pending->done = std::move(done);
    pending->context.set_deadline(std::chrono::system_clock::now() + timeout);
    (stub_->async()->*method)(
        &pending->context, &pending->request, &pending->response,
        [pending](grpc::Status status) { pending->done(status, std::move(pending->response)); });
  }

  struct Tracker {
    std::mutex mu;
    std::condition_variable cv;
    int pending = 0;
  };

  std::shared_ptr<Tracker> tracker_ = std::make_shared<Tracker>();
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<OtaClientV2::OtaClientService::Stub> stub_;
};

}  // namespace

std::string SecondaryTarget(const config::SecondaryEcu& child) {
  const std::string& host = child.ip_addr;
  if (host.find(':') != std::string::npos && !host.starts_with("[")) {
    return StrCat("[", host, "]:", child.port);
  }
  return StrCat(host, ":", child.port);
}

std::unique_ptr<SecondaryTransport> CreateGrpcSecondaryTransport(
    const config::SecondaryEcu& child) {
  return CreateGrpcSecondaryTransportWith(child, nullptr);
}

std::unique_ptr<SecondaryTransport> CreateGrpcSecondaryTransportWith(
    const config::SecondaryEcu& child,
    const std::shared_ptr<grpc::ChannelCredentials>& credentials) {
  return std::make_unique<GrpcSecondaryTransport>(child, credentials);
}

}  // namespace ota::ecu
