// The OtaClientV2.OtaClientService for one ECU: validates requests, hands this ECU's update to the
// UpdateEngine and reports its status. Answers fast: Update only waits for the engine's
// acknowledgement (milliseconds), Status only copies the engine's snapshot.
// Multi-ECU forwarding (otaclient/ecu/) is not wired in yet: entries for other ECUs are answered
// RECOVERABLE with a message saying so.
#pragma once

#include <string>
#include <vector>

#include "otaclient/update/update_engine.h"
#include "proto/otaclient_v2.grpc.pb.h"

namespace ota::service {

// What the service needs to know about its place in the ECU tree (from ecu_info.yml).
struct ServiceConfig {
  std::string ecu_id;
  // Reported in StatusResponse.available_ecu_ids; empty means [ecu_id].
  std::vector<std::string> available_ecu_ids;
  // Direct children from ecu_info's secondaries: known ids, but not reachable until forwarding
  // lands.
  std::vector<std::string> secondary_ecu_ids;
  std::string otaclient_version;
};

// A fresh random request id (16 lowercase hex digits) for requests that arrive without one.
std::string GenerateRequestId();

class OtaClientServiceImpl final : public OtaClientV2::OtaClientService::Service {
 public:
  OtaClientServiceImpl(update::UpdateEngine& engine, ServiceConfig config);

  grpc::Status Update(grpc::ServerContext* context, const OtaClientV2::UpdateRequest* request,
                      OtaClientV2::UpdateResponse* response) override;
  grpc::Status ClientUpdate(grpc::ServerContext* context, const OtaClientV2::UpdateRequest* request,
                            OtaClientV2::UpdateResponse* response) override;
  grpc::Status Abort(grpc::ServerContext* context, const OtaClientV2::AbortRequest* request,
                     OtaClientV2::AbortResponse* response) override;
  grpc::Status Rollback(grpc::ServerContext* context, const OtaClientV2::RollbackRequest* request,
                        OtaClientV2::RollbackResponse* response) override;
  grpc::Status Status(grpc::ServerContext* context, const OtaClientV2::StatusRequest* request,
                      OtaClientV2::StatusResponse* response) override;

 private:
  // The answer for an entry addressed to another ECU.
  std::string OtherEcuMessage(const std::string& ecu_id) const;
  bool IsKnownEcu(const std::string& ecu_id) const;

  update::UpdateEngine& engine_;
  const ServiceConfig config_;
};

}  // namespace ota::service
