#include "otaclient/service/ota_client_service.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>
#include <utility>

#include "common/log/log.h"
#include "common/util/errors.h"
#include "common/util/strings.h"
#include "otaclient/service/status_mapping.h"

namespace ota::service {
namespace {

// The wire promises an acknowledgement "within seconds"; we aim for far less and say so when not.
constexpr auto kSlowAckWarning = std::chrono::milliseconds(500);

std::string NotSupportedMessage(std::string_view rpc) {
  return StrCat(rpc, " is not supported yet");
}

}  // namespace

std::string GenerateRequestId() {
  static constexpr char kHex[] = "0123456789abcdef";
  std::random_device device;
  uint64_t bits = (static_cast<uint64_t>(device()) << 32) | device();
  std::string id(16, '0');
  for (int i = 15; i >= 0; --i, bits >>= 4) id[i] = kHex[bits & 0xf];
  return id;
}

OtaClientServiceImpl::OtaClientServiceImpl(update::UpdateEngine& engine, ServiceConfig config)
    : engine_(engine), config_(std::move(config)) {}

bool OtaClientServiceImpl::IsKnownEcu(const std::string& ecu_id) const {
  auto contains = [&](const std::vector<std::string>& ids) {
    return std::find(ids.begin(), ids.end(), ecu_id) != ids.end();
  };
  return ecu_id == config_.ecu_id || contains(config_.available_ecu_ids) ||
         contains(config_.secondary_ecu_ids);
}

std::string OtaClientServiceImpl::OtherEcuMessage(const std::string& ecu_id) const {
  if (!IsKnownEcu(ecu_id)) {
    return StrCat("unknown ECU id \"", ecu_id, "\": not in available_ecu_ids of ", config_.ecu_id);
  }
  return StrCat("ECU ", ecu_id, " is not reachable from ", config_.ecu_id,
                " (multi-ECU forwarding not implemented yet)");
}

grpc::Status OtaClientServiceImpl::Update(grpc::ServerContext* /*context*/,
                                          const OtaClientV2::UpdateRequest* request,
                                          OtaClientV2::UpdateResponse* response) {
  std::string request_id = request->request_id();
  if (request_id.empty()) {
    request_id = GenerateRequestId();
    log::Info("update request without request_id, generated one", {{"request_id", request_id}});
  }
  log::Info("update request",
            {{"request_id", request_id}, {"entries", std::to_string(request->ecu_size())}});

  // Own entry first, then the others in request order, like the original daemon.
  bool own_entry_seen = false;
  for (const OtaClientV2::UpdateRequestEcu& entry : request->ecu()) {
    if (entry.ecu_id() != config_.ecu_id) continue;
    OtaClientV2::UpdateResponseEcu* answer = response->add_ecu();
    answer->set_ecu_id(entry.ecu_id());
    if (own_entry_seen) {
      answer->set_result(OtaClientV2::RECOVERABLE);
      answer->set_message(StrCat("duplicate entry for ECU ", entry.ecu_id(), " in one request"));
      continue;
    }
    own_entry_seen = true;
    update::UpdateRequestParams params;
    params.version = entry.version();
    params.url = entry.url();
    params.cookies_json = entry.cookies();
    params.release_name = entry.release_name();
    params.release_id = entry.release_id();
    params.image_id = entry.image_id();
    params.request_id = request_id;

    const auto started = std::chrono::steady_clock::now();
    absl::Status accepted = engine_.StartUpdate(params);
    const auto took = std::chrono::steady_clock::now() - started;
    if (took > kSlowAckWarning) {
      log::Warning(
          "update engine was slow to acknowledge",
          {{"request_id", request_id},
           {"ms",
            std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(took).count())}});
    }
    const FailureKind kind = FailureKindOf(accepted);
    answer->set_result(static_cast<OtaClientV2::FailureType>(static_cast<int>(kind)));
    if (accepted.ok()) {
      log::Info("update accepted", {{"request_id", request_id}, {"version", params.version}});
    } else {
      answer->set_message(std::string(accepted.message()));
      log::Warning("update rejected", {{"request_id", request_id},
                                       {"code", absl::StatusCodeToString(accepted.code())},
                                       {"reason", answer->message()}});
    }
  }
  if (!own_entry_seen) {
    log::Info("update request has no entry for this ECU",
              {{"request_id", request_id}, {"ecu_id", config_.ecu_id}});
  }
  for (const OtaClientV2::UpdateRequestEcu& entry : request->ecu()) {
    if (entry.ecu_id() == config_.ecu_id) continue;
    OtaClientV2::UpdateResponseEcu* answer = response->add_ecu();
    answer->set_ecu_id(entry.ecu_id());
    answer->set_result(OtaClientV2::RECOVERABLE);
    answer->set_message(OtherEcuMessage(entry.ecu_id()));
    log::Warning(
        "update entry for another ECU not forwarded",
        {{"request_id", request_id}, {"ecu_id", entry.ecu_id()}, {"reason", answer->message()}});
  }
  return grpc::Status::OK;
}

grpc::Status OtaClientServiceImpl::ClientUpdate(grpc::ServerContext* /*context*/,
                                                const OtaClientV2::UpdateRequest* request,
                                                OtaClientV2::UpdateResponse* response) {
  for (const OtaClientV2::UpdateRequestEcu& entry : request->ecu()) {
    OtaClientV2::UpdateResponseEcu* answer = response->add_ecu();
    answer->set_ecu_id(entry.ecu_id());
    answer->set_result(OtaClientV2::RECOVERABLE);
    answer->set_message(NotSupportedMessage("ClientUpdate"));
  }
  log::Info("ClientUpdate request answered: not supported yet",
            {{"request_id", request->request_id()}});
  return grpc::Status::OK;
}

grpc::Status OtaClientServiceImpl::Abort(grpc::ServerContext* /*context*/,
                                         const OtaClientV2::AbortRequest* request,
                                         OtaClientV2::AbortResponse* response) {
  for (const OtaClientV2::AbortRequestEcu& entry : request->ecu()) {
    OtaClientV2::AbortResponseEcu* answer = response->add_ecu();
    answer->set_ecu_id(entry.ecu_id());
    answer->set_result(OtaClientV2::ABORT_FAILURE);
    answer->set_message(NotSupportedMessage("Abort"));
  }
  log::Info("Abort request answered: not supported yet", {{"request_id", request->request_id()}});
  return grpc::Status::OK;
}

grpc::Status OtaClientServiceImpl::Rollback(grpc::ServerContext* /*context*/,
                                            const OtaClientV2::RollbackRequest* request,
                                            OtaClientV2::RollbackResponse* response) {
  for (const OtaClientV2::RollbackRequestEcu& entry : request->ecu()) {
    OtaClientV2::RollbackResponseEcu* answer = response->add_ecu();
    answer->set_ecu_id(entry.ecu_id());
    answer->set_result(OtaClientV2::RECOVERABLE);
    answer->set_message(NotSupportedMessage("Rollback"));
  }
  log::Info("Rollback request answered: not supported yet",
            {{"request_id", request->request_id()}});
  return grpc::Status::OK;
}

grpc::Status OtaClientServiceImpl::Status(grpc::ServerContext* /*context*/,
                                          const OtaClientV2::StatusRequest* /*request*/,
                                          OtaClientV2::StatusResponse* response) {
  const update::StatusSnapshot snapshot = engine_.Snapshot();
  *response->add_ecu() = ToEcuStatusV1(snapshot, config_.ecu_id);
  *response->add_ecu_v2() = ToEcuStatusV2(snapshot, config_.ecu_id, config_.otaclient_version);
  if (config_.available_ecu_ids.empty()) {
    response->add_available_ecu_ids(config_.ecu_id);
  } else {
    for (const std::string& id : config_.available_ecu_ids) response->add_available_ecu_ids(id);
  }
  return grpc::Status::OK;
}

}  // namespace ota::service
