// Fuzzes what reaches the otaclient service over the wire (issue 17), end to end through the
// real OtaClientServiceImpl and EcuTree. Byte 0 says what the rest is: a serialized message,
// as gRPC hands it over (bytes that do not decode are refused by gRPC before us: skipped).
//   0 UpdateRequest, 1 AbortRequest, 2 RollbackRequest: a request to the service;
//   3 StatusResponse, 4 UpdateResponse, 5 AbortResponse, 6 RollbackResponse: what secondary "a"
//     answers (to its Status polls, or to an Update/Abort/Rollback naming main, a, its child a1
//     and b, the other secondary, which answers well).
// This ECU ("main") runs over an engine that only applies the engine's own request check
// (update::ValidateUpdateRequest) and never starts anything.
// Whatever arrives, nothing crashes and:
//   - a request is refused (INVALID_ARGUMENT) exactly when the limits check refuses it, and then
//     reaches neither the engine nor a secondary;
//   - every answer of this ECU (Status, Update, Abort, Rollback) serializes to bytes that parse
//     back (proto3: valid UTF-8 only) and passes the checks a parent applies to what its child
//     answers (otaclient/ecu/child_answer.h; entry counts aside, they bound one subtree);
//   - an answer of "a" those checks refuse is not used: no entry of it is merged, and its ECUs'
//     answers name the refusal;
//   - Status never lists this ECU's id twice, nor any id twice in ecu_v2.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "common/log/log.h"
#include "grpcpp/server_context.h"
#include "otaclient/ecu/child_answer.h"
#include "otaclient/ecu/ecu_tree.h"
#include "otaclient/service/ota_client_service.h"
#include "otaclient/service/request_limits.h"
#include "otaclient/update/update_engine.h"
#include "test/fuzz/fuzz_support.h"
#include "test/unit/ecu/inline_transport.h"

using ota::fuzz::Require;

namespace {

using ota::ecu::CheckChildAnswer;
using ota::ecu::testing::InlineScript;
using ota::ecu::testing::InlineScripts;
using ota::ecu::testing::InlineTransports;

// The engine's request check, and nothing started: every valid request is "busy".
class CheckingEngine final : public ota::update::UpdateEngine {
 public:
  absl::Status StartUpdate(const ota::update::UpdateRequestParams& request) override {
    ++calls;
    if (absl::Status bad = ota::update::ValidateUpdateRequest(request); !bad.ok()) return bad;
    return absl::FailedPreconditionError("update already in progress (fuzz)");
  }
  ota::update::StatusSnapshot Snapshot() const override { return {}; }
  absl::StatusOr<std::string> Abort() override {
    ++calls;
    return absl::FailedPreconditionError("Cannot abort: no active OTA update in progress");
  }
  absl::Status StartRollback() override {
    ++calls;
    return absl::FailedPreconditionError("cannot roll back: fuzz");
  }
  std::atomic<int> calls{0};
};

// What a parent ECU checks in this ECU's answer, and the wire round trip.
template <typename Message>
void RequireFitForTheCaller(const Message& ours) {
  std::string wire;
  Require(ours.SerializeToString(&wire));
  Message back;
  Require(back.ParseFromString(wire));
  ota::ecu::ChildAnswerLimits limits;
  limits.max_entries = 1 << 20;  // ours lists several subtrees; each was checked on its own
  Require(CheckChildAnswer(ours, limits).ok());
}

OtaClientV2::StatusResponseEcuV2 Entry(const std::string& id, OtaClientV2::StatusOta status) {
  OtaClientV2::StatusResponseEcuV2 entry;
  entry.set_ecu_id(id);
  entry.set_ota_status(status);
  entry.set_firmware_version("1");
  return entry;
}

// Good answers of "a" (with its child "a1") or "b".
void SetGoodAnswers(InlineScript& script, const std::set<std::string>& subtree) {
  OtaClientV2::StatusResponse status;
  OtaClientV2::UpdateResponse update;
  OtaClientV2::AbortResponse abort;
  OtaClientV2::RollbackResponse rollback;
  for (const std::string& id : subtree) {
    *status.add_ecu_v2() = Entry(id, OtaClientV2::SUCCESS);
    status.add_available_ecu_ids(id);
    update.add_ecu()->set_ecu_id(id);
    abort.add_ecu()->set_ecu_id(id);
    rollback.add_ecu()->set_ecu_id(id);
  }
  script.SetStatus(status);
  script.SetUpdate(update);
  script.SetAbort(abort);
  script.SetRollback(rollback);
}

template <typename Request>
Request Naming(std::initializer_list<const char*> ids) {
  Request request;
  request.set_request_id("fuzz");
  for (const char* id : ids) request.add_ecu()->set_ecu_id(id);
  return request;
}

enum Kind {
  kUpdateRequest,
  kAbortRequest,
  kRollbackRequest,
  kStatusAnswer,
  kUpdateAnswer,
  kAbortAnswer,
  kRollbackAnswer,
  kKinds
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ota::fuzz::QuietLogs();
  if (size == 0) return 0;
  const int kind = data[0] % kKinds;
  const std::string bytes(reinterpret_cast<const char*>(data + 1), size - 1);

  OtaClientV2::UpdateRequest update_request;
  OtaClientV2::AbortRequest abort_request;
  OtaClientV2::RollbackRequest rollback_request;
  OtaClientV2::StatusResponse status_answer;
  OtaClientV2::UpdateResponse update_answer;
  OtaClientV2::AbortResponse abort_answer;
  OtaClientV2::RollbackResponse rollback_answer;
  bool decoded = false;
  switch (kind) {
    case kUpdateRequest:
      decoded = update_request.ParseFromString(bytes);
      break;
    case kAbortRequest:
      decoded = abort_request.ParseFromString(bytes);
      break;
    case kRollbackRequest:
      decoded = rollback_request.ParseFromString(bytes);
      break;
    case kStatusAnswer:
      decoded = status_answer.ParseFromString(bytes);
      break;
    case kUpdateAnswer:
      decoded = update_answer.ParseFromString(bytes);
      break;
    case kAbortAnswer:
      decoded = abort_answer.ParseFromString(bytes);
      break;
    case kRollbackAnswer:
      decoded = rollback_answer.ParseFromString(bytes);
      break;
    default:
      break;
  }
  if (!decoded) return 0;

  InlineScripts scripts;
  scripts["a"] = std::make_shared<InlineScript>();
  scripts["b"] = std::make_shared<InlineScript>();
  SetGoodAnswers(*scripts["a"], {"a", "a1"});
  SetGoodAnswers(*scripts["b"], {"b"});
  bool a_refused = false;
  switch (kind) {
    case kStatusAnswer:
      scripts["a"]->SetStatus(status_answer);
      a_refused = !CheckChildAnswer(status_answer).ok();
      break;
    case kUpdateAnswer:
      scripts["a"]->SetUpdate(update_answer);
      a_refused = !CheckChildAnswer(update_answer).ok();
      break;
    case kAbortAnswer:
      scripts["a"]->SetAbort(abort_answer);
      a_refused = !CheckChildAnswer(abort_answer).ok();
      break;
    case kRollbackAnswer:
      scripts["a"]->SetRollback(rollback_answer);
      a_refused = !CheckChildAnswer(rollback_answer).ok();
      break;
    default:
      break;
  }

  ota::ecu::EcuTreeOptions options;
  options.self_ecu_id = "main";
  options.children = {{"a", "127.0.0.2", 50051}, {"b", "127.0.0.3", 50051}};
  options.poll_interval_idle = std::chrono::hours(1);
  options.poll_interval_active = std::chrono::hours(1);
  options.drop_after = std::chrono::hours(1);
  ota::ecu::EcuTree tree(options, InlineTransports(scripts));
  tree.Start(nullptr);
  for (const auto& [id, script] : scripts) Require(script->WaitAnswers(0));

  CheckingEngine engine;
  ota::service::ServiceConfig config;
  config.ecu_id = "main";
  config.available_ecu_ids = {"main", "a", "a1", "b"};
  config.secondary_ecu_ids = {"a", "b"};
  config.otaclient_version = "fuzz";
  ota::service::OtaClientServiceImpl service(engine, config, &tree);
  grpc::ServerContext context;

  // Status: only well-formed answers are merged, and ours stays fit for our own parent.
  OtaClientV2::StatusResponse status;
  service.AnswerStatus(&status);
  RequireFitForTheCaller(status);
  std::set<std::string> v2_ids;
  for (const auto& entry : status.ecu_v2()) Require(v2_ids.insert(entry.ecu_id()).second);
  if (kind == kStatusAnswer && a_refused) {
    Require(v2_ids == std::set<std::string>({"main", "b"}));
  }

  auto refused_by_a = [](const std::string& message) {
    return message.find("secondary a (127.0.0.2:50051) answered") != std::string::npos &&
           message.find("with an invalid answer: ") != std::string::npos;
  };
  const int forwarded_before = scripts["a"]->forwarded() + scripts["b"]->forwarded();
  switch (kind) {
    case kUpdateRequest: {
      OtaClientV2::UpdateResponse response;
      const grpc::Status result = service.Update(&context, &update_request, &response);
      const bool within_limits = ota::service::CheckUpdateRequest(update_request).ok();
      Require(result.ok() == within_limits);
      if (!result.ok()) {
        Require(result.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
        Require(engine.calls == 0);
        Require(scripts["a"]->forwarded() + scripts["b"]->forwarded() == forwarded_before);
      }
      RequireFitForTheCaller(response);
      break;
    }
    case kAbortRequest: {
      OtaClientV2::AbortResponse response;
      const grpc::Status result = service.Abort(&context, &abort_request, &response);
      Require(result.ok() == ota::service::CheckAbortRequest(abort_request).ok());
      if (!result.ok()) {
        Require(engine.calls == 0);
        Require(scripts["a"]->forwarded() + scripts["b"]->forwarded() == forwarded_before);
      }
      RequireFitForTheCaller(response);
      break;
    }
    case kRollbackRequest: {
      OtaClientV2::RollbackResponse response;
      const grpc::Status result = service.Rollback(&context, &rollback_request, &response);
      Require(result.ok() == ota::service::CheckRollbackRequest(rollback_request).ok());
      if (!result.ok()) {
        Require(engine.calls == 0);
        Require(scripts["a"]->forwarded() + scripts["b"]->forwarded() == forwarded_before);
      }
      RequireFitForTheCaller(response);
      break;
    }
    case kStatusAnswer:
    case kUpdateAnswer: {
      OtaClientV2::UpdateRequest request =
          Naming<OtaClientV2::UpdateRequest>({"main", "a", "a1", "b"});
      for (auto& entry : *request.mutable_ecu()) {
        entry.set_version("2");
        entry.set_url("http://127.0.0.1/image");
      }
      OtaClientV2::UpdateResponse response;
      Require(service.Update(&context, &request, &response).ok());
      RequireFitForTheCaller(response);
      std::set<std::string> answered;
      for (const auto& entry : response.ecu()) {
        Require(answered.insert(entry.ecu_id()).second);
        if (kind == kUpdateAnswer && a_refused && entry.ecu_id() == "a") {
          Require(entry.result() == OtaClientV2::RECOVERABLE && refused_by_a(entry.message()));
        }
      }
      Require(answered == std::set<std::string>({"main", "a", "a1", "b"}));
      break;
    }
    case kAbortAnswer: {
      OtaClientV2::AbortResponse response;
      Require(service.Abort(&context, &abort_request, &response).ok());
      RequireFitForTheCaller(response);
      if (a_refused) {
        Require(response.ecu_size() == 3);  // a's failure, b's answer, main's own
        Require(response.ecu(0).ecu_id() == "a" && refused_by_a(response.ecu(0).message()));
      }
      break;
    }
    case kRollbackAnswer: {
      const OtaClientV2::RollbackRequest request =
          Naming<OtaClientV2::RollbackRequest>({"main", "a", "a1", "b"});
      OtaClientV2::RollbackResponse response;
      Require(service.Rollback(&context, &request, &response).ok());
      RequireFitForTheCaller(response);
      for (const auto& entry : response.ecu()) {
        if (a_refused && entry.ecu_id() == "a1") {
          Require(entry.result() == OtaClientV2::RECOVERABLE && refused_by_a(entry.message()));
        }
      }
      break;
    }
    default:
      break;
  }
  tree.Stop();
  return 0;
}
