// The OtaClientV2.OtaClientService for one ECU: validates requests, hands this ECU's update to the
// UpdateEngine and reports its status. Answers fast: Update only waits for the engine's
// acknowledgement (milliseconds), Status only copies the engine's snapshot.
// Multi-ECU: Update/Rollback entries for other ECUs are forwarded to the direct secondaries
// through an ecu::EcuTree (rules in otaclient/ecu/fanout.h); Abort, as the Python client does it,
// goes to every direct secondary and aborts this ECU whatever the request lists. Status adds the
// tree's cached entries (otaclient/ecu/ecu_tree.h); Status never waits for a secondary. A request
// without request_id gets one (GenerateRequestId), logged here and carried in the forwarded
// request. ClientUpdate is forwarded like Update (same answers); this ECU's entry goes to the
// ClientUpdater (client_update.h): CLIENT_UPDATING in Status while it runs, Update refused
// meanwhile (RECOVERABLE), ClientUpdate refused while an update, abort or rollback runs; Abort
// is answered by the engine (nothing to abort: ABORT_FAILURE, as upstream). Without a
// ClientUpdater this ECU answers ClientUpdate "not supported" (still forwarding). Local
// Abort/Rollback go to UpdateEngine::Abort()/StartRollback(); their answers and errors (also
// kUnimplemented) become this ECU's per-ECU answer.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "otaclient/ecu/ecu_tree.h"
#include "otaclient/update/client_update.h"
#include "otaclient/update/update_engine.h"
#include "proto/otaclient_v2.grpc.pb.h"

namespace ota::service {

// What the service needs to know about its place in the ECU tree (from ecu_info.yaml).
struct ServiceConfig {
  std::string ecu_id;
  // Reported in StatusResponse.available_ecu_ids; empty means [ecu_id].
  std::vector<std::string> available_ecu_ids;
  // Direct children from ecu_info's secondaries (informational; reaching them is the tree's job).
  std::vector<std::string> secondary_ecu_ids;
  std::string otaclient_version;
  // Not OK when ecu_info is missing or invalid: the service then runs on the default ecu_info
  // (as the Python client does) and answers every entry of Update, ClientUpdate and Rollback
  // UNRECOVERABLE with this error (file, line and field), forwarding nothing. Status and Abort
  // work as usual.
  absl::Status ecu_info_error;
};

// A fresh request id for requests that arrive without one, in the Python client's format:
// "<unix seconds>-<8 random lowercase hex digits>".
std::string GenerateRequestId();

// Status is served through gRPC's callback API, the other calls by the synchronous server's
// thread pool: a Status must never be refused (RESOURCE_EXHAUSTED) because that pool is busy,
// and answering one never blocks (it copies the engine's snapshot and the tree's cache).
using OtaClientServiceBase = OtaClientV2::OtaClientService::WithCallbackMethod_Status<
    OtaClientV2::OtaClientService::Service>;

class OtaClientServiceImpl final : public OtaClientServiceBase {
 public:
  // `tree` (not owned, must outlive the service) reaches the secondaries; nullptr = this ECU has
  // none (a childless tree is used: every other ECU id is answered "unknown").
  // `client_updater` (not owned, may be nullptr) handles this ECU's ClientUpdate.
  OtaClientServiceImpl(update::UpdateEngine& engine, ServiceConfig config,
                       ecu::EcuTree* tree = nullptr,
                       update::ClientUpdater* client_updater = nullptr);

  grpc::Status Update(grpc::ServerContext* context, const OtaClientV2::UpdateRequest* request,
                      OtaClientV2::UpdateResponse* response) override;
  grpc::Status ClientUpdate(grpc::ServerContext* context, const OtaClientV2::UpdateRequest* request,
                            OtaClientV2::UpdateResponse* response) override;
  grpc::Status Abort(grpc::ServerContext* context, const OtaClientV2::AbortRequest* request,
                     OtaClientV2::AbortResponse* response) override;
  grpc::Status Rollback(grpc::ServerContext* context, const OtaClientV2::RollbackRequest* request,
                        OtaClientV2::RollbackResponse* response) override;
  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* context,
                                   const OtaClientV2::StatusRequest* request,
                                   OtaClientV2::StatusResponse* response) override;

  // What Status answers: this ECU first, then the cached entries of the secondaries.
  void AnswerStatus(OtaClientV2::StatusResponse* response) const;

 private:
  // This ECU's own answers (appended first to the response).
  void LocalUpdate(const OtaClientV2::UpdateRequest& request, OtaClientV2::UpdateResponse* out);
  void LocalClientUpdate(const OtaClientV2::UpdateRequest& request,
                         OtaClientV2::UpdateResponse* out);
  void LocalAbort(const OtaClientV2::AbortRequest& request, OtaClientV2::AbortResponse* out);
  void LocalRollback(const OtaClientV2::RollbackRequest& request,
                     OtaClientV2::RollbackResponse* out);
  // ecu_info_error is set: every entry of `request` gets UNRECOVERABLE with it; true then.
  template <typename Request, typename Response>
  bool RefusedForEcuInfo(std::string_view rpc, const Request& request, Response* response) const;

  update::UpdateEngine& engine_;
  const ServiceConfig config_;
  std::unique_ptr<ecu::EcuTree> childless_tree_;  // used when no tree was given
  ecu::EcuTree* tree_;
  update::ClientUpdater* client_updater_;
};

}  // namespace ota::service
