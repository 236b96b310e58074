// A scripted secondary for the EcuTree tests: a real gRPC OtaClientService on 127.0.0.x whose
// answers (Status content, Update results, delays) the test sets. Used where a test needs a child
// that is slow, lies or answers garbage on demand; the real otaclient is covered by the e2e test.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/grpcpp.h"
#include "otaclient/service/server.h"
#include "proto/otaclient_v2.grpc.pb.h"

namespace ota::ecu::testing {

inline OtaClientV2::StatusResponseEcuV2 Entry(const std::string& id,
                                              OtaClientV2::StatusOta status) {
  OtaClientV2::StatusResponseEcuV2 entry;
  entry.set_ecu_id(id);
  entry.set_ota_status(status);
  entry.set_firmware_version("v1");
  return entry;
}

class ScriptedEcu final : public OtaClientV2::OtaClientService::Service {
 public:
  // `subtree`: ids this ECU answers Update/Abort for (others get "unknown ECU id").
  explicit ScriptedEcu(std::set<std::string> subtree) : subtree_(std::move(subtree)) {}

  void SetStatus(std::vector<OtaClientV2::StatusResponseEcuV2> entries) {
    std::lock_guard<std::mutex> lock(mu_);
    status_.clear_ecu_v2();
    for (auto& e : entries) *status_.add_ecu_v2() = e;
  }
  // v1 "not heard" placeholders ({ecu_id, result: RECOVERABLE}, no status), as a real ECU lists
  // a child it has no answer from (yet).
  void SetNotHeard(const std::vector<std::string>& ids) {
    std::lock_guard<std::mutex> lock(mu_);
    status_.clear_ecu();
    for (const auto& id : ids) {
      OtaClientV2::StatusResponseEcu* placeholder = status_.add_ecu();
      placeholder->set_ecu_id(id);
      placeholder->set_result(OtaClientV2::RECOVERABLE);
    }
  }
  // Status fails with this gRPC error until set back to OK (a server that cannot serve).
  void SetStatusError(grpc::Status error) {
    std::lock_guard<std::mutex> lock(mu_);
    status_error_ = std::move(error);
  }
  // How long Status / Update take (a slow child is the behaviour under test).
  void SetDelays(std::chrono::milliseconds status, std::chrono::milliseconds update) {
    std::lock_guard<std::mutex> lock(mu_);
    status_delay_ = status;
    update_delay_ = update;
  }
  int status_calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return status_calls_;
  }
  std::vector<OtaClientV2::UpdateRequest> updates() {
    std::lock_guard<std::mutex> lock(mu_);
    return updates_;
  }
  std::vector<OtaClientV2::UpdateRequest> client_updates() {
    std::lock_guard<std::mutex> lock(mu_);
    return client_updates_;
  }
  // Abort answers with these entries (its subtree's own answers); until set, Abort is
  // UNIMPLEMENTED, like a daemon older than the abort endpoint.
  void SetAbortAnswers(std::vector<OtaClientV2::AbortResponseEcu> answers) {
    std::lock_guard<std::mutex> lock(mu_);
    abort_answers_ = std::move(answers);
  }
  std::vector<OtaClientV2::AbortRequest> aborts() {
    std::lock_guard<std::mutex> lock(mu_);
    return aborts_;
  }

  grpc::Status Abort(grpc::ServerContext*, const OtaClientV2::AbortRequest* request,
                     OtaClientV2::AbortResponse* response) override {
    std::lock_guard<std::mutex> lock(mu_);
    aborts_.push_back(*request);
    if (!abort_answers_) return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "");
    for (const auto& answer : *abort_answers_) *response->add_ecu() = answer;
    return grpc::Status::OK;
  }

  grpc::Status Status(grpc::ServerContext*, const OtaClientV2::StatusRequest*,
                      OtaClientV2::StatusResponse* response) override {
    std::chrono::milliseconds delay;
    grpc::Status result;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++status_calls_;
      delay = status_delay_;
      result = status_error_;
      if (result.ok()) *response = status_;
    }
    std::this_thread::sleep_for(delay);
    return result;
  }

  grpc::Status Update(grpc::ServerContext*, const OtaClientV2::UpdateRequest* request,
                      OtaClientV2::UpdateResponse* response) override {
    std::chrono::milliseconds delay;
    {
      std::lock_guard<std::mutex> lock(mu_);
      updates_.push_back(*request);
      delay = update_delay_;
      for (const auto& entry : request->ecu()) {
        auto* answer = response->add_ecu();
        answer->set_ecu_id(entry.ecu_id());
        if (!subtree_.contains(entry.ecu_id())) {
          answer->set_result(OtaClientV2::RECOVERABLE);
          answer->set_message("unknown ECU id \"" + entry.ecu_id() + "\"");
          continue;
        }
        answer->set_result(OtaClientV2::NO_FAILURE);
        // Like a real ECU: UPDATING right after the ack.
        for (auto& e : *status_.mutable_ecu_v2()) {
          if (e.ecu_id() == entry.ecu_id()) e.set_ota_status(OtaClientV2::UPDATING);
        }
      }
    }
    std::this_thread::sleep_for(delay);
    return grpc::Status::OK;
  }

  // Acknowledges the entries of its subtree; its status is left as scripted.
  grpc::Status ClientUpdate(grpc::ServerContext*, const OtaClientV2::UpdateRequest* request,
                            OtaClientV2::UpdateResponse* response) override {
    std::lock_guard<std::mutex> lock(mu_);
    client_updates_.push_back(*request);
    for (const auto& entry : request->ecu()) {
      auto* answer = response->add_ecu();
      answer->set_ecu_id(entry.ecu_id());
      answer->set_result(subtree_.contains(entry.ecu_id()) ? OtaClientV2::NO_FAILURE
                                                           : OtaClientV2::RECOVERABLE);
    }
    return grpc::Status::OK;
  }

 private:
  std::mutex mu_;
  std::set<std::string> subtree_;
  OtaClientV2::StatusResponse status_;
  grpc::Status status_error_;
  std::chrono::milliseconds status_delay_{0}, update_delay_{0};
  int status_calls_ = 0;
  std::vector<OtaClientV2::UpdateRequest> updates_;
  std::vector<OtaClientV2::UpdateRequest> client_updates_;
  std::optional<std::vector<OtaClientV2::AbortResponseEcu>> abort_answers_;
  std::vector<OtaClientV2::AbortRequest> aborts_;
};

// Answers every call with bytes that are no protobuf message at all.
class GarbageService final : public grpc::CallbackGenericService {
 public:
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext*) override {
    std::lock_guard<std::mutex> lock(mu_);
    reactors_.push_back(std::make_unique<Reactor>());
    return reactors_.back().get();
  }

 private:
  class Reactor final : public grpc::ServerGenericBidiReactor {
   public:
    Reactor() {
      const std::string junk = "\xff\xff\xff\xff garbage";
      grpc::Slice slice(junk);
      reply_ = grpc::ByteBuffer(&slice, 1);
      StartRead(&request_);
    }
    void OnReadDone(bool ok) override {
      if (ok) {
        StartWriteAndFinish(&reply_, grpc::WriteOptions(), grpc::Status::OK);
      } else {
        Finish(grpc::Status::OK);
      }
    }
    void OnDone() override {}  // owned by the service

   private:
    grpc::ByteBuffer request_, reply_;
  };
  std::mutex mu_;
  std::vector<std::unique_ptr<Reactor>> reactors_;
};

// A server on `address`:`port` (0 = kernel-chosen; else a test-port registry claim) carrying
// `service`; *port is set to the bound port.
inline std::unique_ptr<grpc::Server> Serve(const std::string& address, int* port,
                                           grpc::Service* service,
                                           grpc::CallbackGenericService* generic = nullptr) {
  grpc::ServerBuilder builder;
  // As otaclient does: a port already in use fails instead of being shared (SO_REUSEPORT).
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(address + ":" + std::to_string(*port), grpc::InsecureServerCredentials(),
                           port);
  if (service) builder.RegisterService(service);
  if (generic) builder.RegisterCallbackGenericService(generic);
  return builder.BuildAndStart();
}

}  // namespace ota::ecu::testing
