// The seam between this ECU and one directly connected secondary ECU (ecu_info `secondaries`):
// asynchronous Update/ClientUpdate/Status/Abort/Rollback calls, each with its own deadline. The
// production implementation keeps one gRPC channel per child for the daemon's lifetime
// (connections are reused; a restarted child is reconnected within about a second).
//
// Rules every implementation keeps:
//   - `done` is called exactly once per call, from some other thread, at the latest shortly
//     after `timeout` (gRPC enforces the deadline; DEADLINE_EXCEEDED then).
//   - calls never block the caller (no connect wait: an unreachable child fails fast with
//     UNAVAILABLE instead of waiting for the deadline).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "common/config/ecu_info.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/status.h"
#include "proto/otaclient_v2.pb.h"

namespace ota::ecu {

template <typename Response>
using Done = std::function<void(const grpc::Status& status, Response response)>;

class SecondaryTransport {
 public:
  virtual ~SecondaryTransport() = default;

  virtual void Update(const OtaClientV2::UpdateRequest& request, std::chrono::milliseconds timeout,
                      Done<OtaClientV2::UpdateResponse> done) = 0;
  virtual void ClientUpdate(const OtaClientV2::UpdateRequest& request,
                            std::chrono::milliseconds timeout,
                            Done<OtaClientV2::UpdateResponse> done) = 0;
  virtual void Status(std::chrono::milliseconds timeout,
                      Done<OtaClientV2::StatusResponse> done) = 0;
  virtual void Abort(const OtaClientV2::AbortRequest& request, std::chrono::milliseconds timeout,
                     Done<OtaClientV2::AbortResponse> done) = 0;
  virtual void Rollback(const OtaClientV2::RollbackRequest& request,
                        std::chrono::milliseconds timeout,
                        Done<OtaClientV2::RollbackResponse> done) = 0;
};

// "ip:port" of a secondary as dialled (IPv6 literals bracketed).
std::string SecondaryTarget(const config::SecondaryEcu& child);

// A gRPC client of the child's OtaClientService over an insecure channel, created now and
// reused for every call. Pending calls must finish before the transport is destroyed: owners
// wait for their `done` callbacks (see ecu_tree.h).
std::unique_ptr<SecondaryTransport> CreateGrpcSecondaryTransport(const config::SecondaryEcu& child);
// The same over `credentials` (e.g. mutual TLS, common/crypto/grpc_tls.h; nullptr: insecure).
std::unique_ptr<SecondaryTransport> CreateGrpcSecondaryTransportWith(
    const config::SecondaryEcu& child,
    const std::shared_ptr<grpc::ChannelCredentials>& credentials);

}  // namespace ota::ecu
