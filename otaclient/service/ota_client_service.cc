#include "otaclient/service/ota_client_service.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string_view>
#include <utility>

#include "common/log/log.h"
#include "common/util/errors.h"
#include "common/util/memory.h"
#include "common/util/strings.h"
#include "otaclient/ecu/fanout.h"
#include "otaclient/service/request_limits.h"
#include "otaclient/service/status_mapping.h"

namespace ota::service {
namespace {

// The wire promises an acknowledgement "within seconds"; we aim for far less and say so when not.
constexpr auto kSlowAckWarning = std::chrono::milliseconds(500);

std::string NotSupportedMessage(std::string_view rpc) {
  return StrCat(rpc, " is not supported yet");
}

// The caller's request id, or a fresh one (logged) when it sent none.
std::string RequestIdOf(const std::string& given, std::string_view rpc) {
  if (!given.empty()) return given;
  std::string generated = GenerateRequestId();
  log::Info("request without request_id, generated one", {{"rpc", rpc}, {"request_id", generated}});
  return generated;
}

// A request over the size limits (request_limits.h) is refused whole: nothing of it is
// forwarded or kept.
grpc::Status Refused(std::string_view rpc, const absl::Status& why) {
  log::Warning("request refused", {{"rpc", rpc}, {"reason", std::string(why.message())}});
  return {grpc::StatusCode::INVALID_ARGUMENT, std::string(why.message())};
}

// Update, ClientUpdate, Abort and Rollback are rare and may carry large (or hostile) requests:
// the memory they took goes back when the call is answered.
struct ReleaseMemoryAfterCall {
  ReleaseMemoryAfterCall() = default;
  ReleaseMemoryAfterCall(const ReleaseMemoryAfterCall&) = delete;
  ReleaseMemoryAfterCall& operator=(const ReleaseMemoryAfterCall&) = delete;
  ~ReleaseMemoryAfterCall() { ReleaseFreeMemory(); }
};

// One log line per ECU answer that is not a plain success (the successes are logged by the ECU
// that took them).
template <typename Response>
void LogAnswers(std::string_view what, const std::string& request_id, const Response& response) {
  for (const auto& answer : response.ecu()) {
    if (static_cast<int>(answer.result()) == 0) continue;
    // Forwarded requests name the whole tree; ids outside this ECU's subtree are normal here.
    const bool unknown = answer.message().starts_with(ecu::kUnknownEcuPrefix);
    log::Write(unknown ? log::Level::kDebug : log::Level::kWarning, what,
               {{"request_id", request_id},
                {"ecu_id", answer.ecu_id()},
                {"result", std::to_string(static_cast<int>(answer.result()))},
                {"message", answer.message()}});
  }
}

// Update, Abort and Rollback alike: the request gets its request id, goes through the ECU tree
// (forwarded to the secondaries, this ECU's own answers from `local` first, then the others in
// request order, like the original daemon), and every answer that is not a plain success is
// logged. `noun` names the call in log lines ("update request", "update answered").
template <typename Request, typename Response>
using TreeCall = Response (ecu::EcuTree::*)(const Request&, const std::function<void(Response*)>&);

template <typename Request, typename Response>
void FanOut(std::string_view rpc, std::string_view noun, ecu::EcuTree& tree,
            TreeCall<Request, Response> call, const Request& request, Response* response,
            const std::function<void(const Request&, Response*)>& local) {
  Request forwarded = request;
  forwarded.set_request_id(RequestIdOf(request.request_id(), rpc));
  log::Info(StrCat(noun, " request"), {{"request_id", forwarded.request_id()},
                                       {"entries", std::to_string(request.ecu_size())}});
  *response = (tree.*call)(forwarded, [&](Response* out) { local(forwarded, out); });
  LogAnswers(StrCat(noun, " answered"), forwarded.request_id(), *response);
}

// This ECU's entries of `request`: the first one is answered by `act(entry, answer)`, any
// further one gets `duplicate_result` and says so. Returns whether there was one.
template <typename Request, typename Response, typename Result, typename Act>
bool AnswerOwnEntries(const std::string& ecu_id, const Request& request, Response* response,
                      Result duplicate_result, const Act& act) {
  bool own_entry_seen = false;
  for (const auto& entry : request.ecu()) {
    if (entry.ecu_id() != ecu_id) continue;
    auto* answer = response->add_ecu();
    answer->set_ecu_id(entry.ecu_id());
    if (own_entry_seen) {
      answer->set_result(duplicate_result);
      answer->set_message(StrCat("duplicate entry for ECU ", entry.ecu_id(), " in one request"));
      continue;
    }
    own_entry_seen = true;
    act(entry, answer);
  }
  return own_entry_seen;
}

// The wire's FailureType for an engine's answer.
OtaClientV2::FailureType FailureTypeOf(const absl::Status& status) {
  return static_cast<OtaClientV2::FailureType>(static_cast<int>(FailureKindOf(status)));
}

}  // namespace

std::string GenerateRequestId() {
  static constexpr char kHex[] = "0123456789abcdef";
  std::random_device device;
  uint32_t bits = device();
  std::string random(8, '0');
  for (int i = 7; i >= 0; --i, bits >>= 4) random[i] = kHex[bits & 0xf];
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
      std::chrono::system_clock::now().time_since_epoch());
  return StrCat(now.count(), "-", random);
}

OtaClientServiceImpl::OtaClientServiceImpl(update::UpdateEngine& engine, ServiceConfig config,
                                           ecu::EcuTree* tree,
                                           update::ClientUpdater* client_updater)
    : engine_(engine), config_(std::move(config)), tree_(tree), client_updater_(client_updater) {
  if (tree_ == nullptr) {
    ecu::EcuTreeOptions options;
    options.self_ecu_id = config_.ecu_id;
    childless_tree_ = std::make_unique<ecu::EcuTree>(std::move(options));
    tree_ = childless_tree_.get();
  }
}

template <typename Request, typename Response>
bool OtaClientServiceImpl::RefusedForEcuInfo(std::string_view rpc, const Request& request,
                                             Response* response) const {
  if (config_.ecu_info_error.ok()) return false;
  const std::string message =
      StrCat("ECU ", config_.ecu_id, " refuses ", rpc, ": ecu_info is unusable (",
             config_.ecu_info_error.message(), "); fix it and restart otaclient");
  for (const auto& entry : request.ecu()) {
    auto* answer = response->add_ecu();
    answer->set_ecu_id(entry.ecu_id());
    answer->set_result(OtaClientV2::UNRECOVERABLE);
    answer->set_message(message);
  }
  log::Error(StrCat(rpc, " refused: ecu_info is unusable"),
             {{"request_id", request.request_id()},
              {"entries", std::to_string(request.ecu_size())},
              {"error", std::string(config_.ecu_info_error.message())}});
  return true;
}

void OtaClientServiceImpl::LocalUpdate(const OtaClientV2::UpdateRequest& request,
                                       OtaClientV2::UpdateResponse* response) {
  const std::string& request_id = request.request_id();
  const bool own_entry_seen = AnswerOwnEntries(
      config_.ecu_id, request, response, OtaClientV2::RECOVERABLE,
      [&](const OtaClientV2::UpdateRequestEcu& entry, OtaClientV2::UpdateResponseEcu* answer) {
        update::UpdateRequestParams params;
        params.version = entry.version();
        params.url = entry.url();
        params.cookies_json = entry.cookies();
        params.release_name = entry.release_name();
        params.release_id = entry.release_id();
        params.image_id = entry.image_id();
        params.request_id = request_id;

        if (client_updater_ != nullptr && client_updater_->busy()) {
          answer->set_result(OtaClientV2::RECOVERABLE);
          answer->set_message(StrCat("ECU ", config_.ecu_id,
                                     " is busy: a client update (ClientUpdate) is in progress"));
          log::Warning("update rejected: client update in progress", {{"request_id", request_id}});
          return;
        }
        const auto started = std::chrono::steady_clock::now();
        absl::Status accepted = engine_.StartUpdate(params);
        if (accepted.ok() && client_updater_ != nullptr) client_updater_->ForgetResult();
        const auto took = std::chrono::steady_clock::now() - started;
        if (took > kSlowAckWarning) {
          log::Warning(
              "update engine was slow to acknowledge",
              {{"request_id", request_id},
               {"ms", std::to_string(
                          std::chrono::duration_cast<std::chrono::milliseconds>(took).count())}});
        }
        answer->set_result(FailureTypeOf(accepted));
        if (accepted.ok()) {
          log::Info("update accepted", {{"request_id", request_id}, {"version", params.version}});
        } else {
          answer->set_message(std::string(accepted.message()));
          log::Warning("update rejected", {{"request_id", request_id},
                                           {"code", absl::StatusCodeToString(accepted.code())},
                                           {"reason", answer->message()}});
        }
      });
  if (!own_entry_seen) {
    log::Info("update request has no entry for this ECU",
              {{"request_id", request_id}, {"ecu_id", config_.ecu_id}});
  }
}

grpc::Status OtaClientServiceImpl::Update(grpc::ServerContext* /*context*/,
                                          const OtaClientV2::UpdateRequest* request,
                                          OtaClientV2::UpdateResponse* response) {
  const ReleaseMemoryAfterCall release_memory;
  if (absl::Status bad = CheckUpdateRequest(*request); !bad.ok()) return Refused("Update", bad);
  if (RefusedForEcuInfo("Update", *request, response)) return grpc::Status::OK;
  FanOut<OtaClientV2::UpdateRequest, OtaClientV2::UpdateResponse>(
      "Update", "update", *tree_, &ecu::EcuTree::Update, *request, response,
      [this](const auto& forwarded, auto* out) { LocalUpdate(forwarded, out); });
  return grpc::Status::OK;
}

grpc::Status OtaClientServiceImpl::ClientUpdate(grpc::ServerContext* /*context*/,
                                                const OtaClientV2::UpdateRequest* request,
                                                OtaClientV2::UpdateResponse* response) {
  const ReleaseMemoryAfterCall release_memory;
  if (absl::Status bad = CheckUpdateRequest(*request); !bad.ok()) {
    return Refused("ClientUpdate", bad);
  }
  if (RefusedForEcuInfo("ClientUpdate", *request, response)) return grpc::Status::OK;
  FanOut<OtaClientV2::UpdateRequest, OtaClientV2::UpdateResponse>(
      "ClientUpdate", "client update", *tree_, &ecu::EcuTree::ClientUpdate, *request, response,
      [this](const auto& forwarded, auto* out) { LocalClientUpdate(forwarded, out); });
  return grpc::Status::OK;
}

void OtaClientServiceImpl::LocalClientUpdate(const OtaClientV2::UpdateRequest& request,
                                             OtaClientV2::UpdateResponse* response) {
  const std::string& request_id = request.request_id();
  AnswerOwnEntries(
      config_.ecu_id, request, response, OtaClientV2::RECOVERABLE,
      [&](const OtaClientV2::UpdateRequestEcu& entry, OtaClientV2::UpdateResponseEcu* answer) {
        if (client_updater_ == nullptr) {
          answer->set_result(OtaClientV2::RECOVERABLE);
          answer->set_message(NotSupportedMessage("ClientUpdate"));
          return;
        }
        if (const absl::Status allowed = engine_.ClientUpdateAllowed(); !allowed.ok()) {
          answer->set_result(OtaClientV2::RECOVERABLE);
          answer->set_message(StrCat("ECU ", config_.ecu_id, " is busy: ", allowed.message()));
          log::Warning("client update rejected: busy",
                       {{"request_id", request_id}, {"reason", answer->message()}});
          return;
        }
        update::UpdateRequestParams params;
        params.version = entry.version();
        params.url = entry.url();
        params.cookies_json = entry.cookies();
        params.request_id = request_id;
        if (absl::Status valid = update::ValidateUpdateRequest(params); !valid.ok()) {
          answer->set_result(OtaClientV2::RECOVERABLE);
          answer->set_message(std::string(valid.message()));
          log::Warning("client update rejected",
                       {{"request_id", request_id}, {"reason", answer->message()}});
          return;
        }
        const absl::Status started = client_updater_->Start(params);
        answer->set_result(FailureTypeOf(started));
        if (!started.ok()) {
          answer->set_message(StrCat("ECU ", config_.ecu_id, ": ", started.message()));
          log::Warning("client update rejected",
                       {{"request_id", request_id}, {"reason", answer->message()}});
        }
      });
}

void OtaClientServiceImpl::LocalAbort(const OtaClientV2::AbortRequest& request,
                                      OtaClientV2::AbortResponse* response) {
  // Like the Python client: this ECU is aborted whatever the request lists (even nothing), and
  // answers once, with the engine's message either way.
  OtaClientV2::AbortResponseEcu* answer = response->add_ecu();
  answer->set_ecu_id(config_.ecu_id);
  const absl::StatusOr<std::string> aborted = engine_.Abort();
  if (aborted.ok()) {
    answer->set_result(OtaClientV2::ABORT_NO_FAILURE);
    answer->set_message(*aborted);
    log::Info("abort accepted", {{"request_id", request.request_id()}, {"answer", *aborted}});
  } else {
    answer->set_result(OtaClientV2::ABORT_FAILURE);
    answer->set_message(std::string(aborted.status().message()));
    log::Info("abort refused", {{"request_id", request.request_id()},
                                {"code", absl::StatusCodeToString(aborted.status().code())},
                                {"reason", answer->message()}});
  }
}

grpc::Status OtaClientServiceImpl::Abort(grpc::ServerContext* /*context*/,
                                         const OtaClientV2::AbortRequest* request,
                                         OtaClientV2::AbortResponse* response) {
  const ReleaseMemoryAfterCall release_memory;
  if (absl::Status bad = CheckAbortRequest(*request); !bad.ok()) return Refused("Abort", bad);
  // Every direct secondary gets it too, whatever it lists (ecu_tree.h, Abort).
  FanOut<OtaClientV2::AbortRequest, OtaClientV2::AbortResponse>(
      "Abort", "abort", *tree_, &ecu::EcuTree::Abort, *request, response,
      [this](const auto& forwarded, auto* out) { LocalAbort(forwarded, out); });
  return grpc::Status::OK;
}

void OtaClientServiceImpl::LocalRollback(const OtaClientV2::RollbackRequest& request,
                                         OtaClientV2::RollbackResponse* response) {
  AnswerOwnEntries(
      config_.ecu_id, request, response, OtaClientV2::RECOVERABLE,
      [&](const OtaClientV2::RollbackRequestEcu&, OtaClientV2::RollbackResponseEcu* answer) {
        // A rollback reboots: never under a client update that is handing over.
        const absl::Status started =
            client_updater_ != nullptr && client_updater_->busy()
                ? absl::FailedPreconditionError("a client update (ClientUpdate) is in progress")
                : engine_.StartRollback();
        answer->set_result(FailureTypeOf(started));
        if (started.ok()) {
          log::Info("rollback accepted", {{"request_id", request.request_id()}});
        } else {
          answer->set_message(StrCat("ECU ", config_.ecu_id, ": ", started.message()));
          log::Warning("rollback refused", {{"request_id", request.request_id()},
                                            {"code", absl::StatusCodeToString(started.code())},
                                            {"reason", answer->message()}});
        }
      });
}

grpc::Status OtaClientServiceImpl::Rollback(grpc::ServerContext* /*context*/,
                                            const OtaClientV2::RollbackRequest* request,
                                            OtaClientV2::RollbackResponse* response) {
  const ReleaseMemoryAfterCall release_memory;
  if (absl::Status bad = CheckRollbackRequest(*request); !bad.ok()) return Refused("Rollback", bad);
  if (RefusedForEcuInfo("Rollback", *request, response)) return grpc::Status::OK;
  FanOut<OtaClientV2::RollbackRequest, OtaClientV2::RollbackResponse>(
      "Rollback", "rollback", *tree_, &ecu::EcuTree::Rollback, *request, response,
      [this](const auto& forwarded, auto* out) { LocalRollback(forwarded, out); });
  return grpc::Status::OK;
}

grpc::ServerUnaryReactor* OtaClientServiceImpl::Status(
    grpc::CallbackServerContext* context, const OtaClientV2::StatusRequest* /*request*/,
    OtaClientV2::StatusResponse* response) {
  AnswerStatus(response);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

void OtaClientServiceImpl::AnswerStatus(OtaClientV2::StatusResponse* response) const {
  update::StatusSnapshot snapshot = engine_.Snapshot();
  if (client_updater_ != nullptr) client_updater_->ApplyTo(&snapshot);
  *response->add_ecu() = ToEcuStatusV1(snapshot, config_.ecu_id);
  *response->add_ecu_v2() = ToEcuStatusV2(snapshot, config_.ecu_id, config_.otaclient_version);
  tree_->AppendChildrenStatus(response);
  if (config_.available_ecu_ids.empty()) {
    response->add_available_ecu_ids(config_.ecu_id);
  } else {
    for (const std::string& id : config_.available_ecu_ids) response->add_available_ecu_ids(id);
  }
}

}  // namespace ota::service
