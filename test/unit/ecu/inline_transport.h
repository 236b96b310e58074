// A secondary reached in-process, for the ECU tree's unit tests and fuzz targets: every call is
// answered at once (`done` runs before the call returns) with what the child's InlineScript
// holds, which the test may change at any time from any thread. Once Status() returned, the tree
// has taken the answer in, so a test waits for answers by count instead of by time.
// (ecu_tree_threads_test answers on threads of its own instead, to exercise the handoffs.)
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/config/ecu_info.h"
#include "otaclient/ecu/ecu_tree.h"
#include "otaclient/ecu/secondary_transport.h"

namespace ota::ecu::testing {

class InlineScript {
 public:
  void SetStatus(OtaClientV2::StatusResponse answer) {
    std::lock_guard lock(mu_);
    status_ = std::move(answer);
  }
  void SetUpdate(OtaClientV2::UpdateResponse answer) {
    std::lock_guard lock(mu_);
    update_ = std::move(answer);
  }
  // Until set, Abort is UNIMPLEMENTED (a daemon older than the abort endpoint).
  void SetAbort(OtaClientV2::AbortResponse answer) {
    std::lock_guard lock(mu_);
    abort_ = std::move(answer);
  }
  void SetRollback(OtaClientV2::RollbackResponse answer) {
    std::lock_guard lock(mu_);
    rollback_ = std::move(answer);
  }

  // Status answers given (counted once the tree took the answer in).
  int answers() {
    std::lock_guard lock(mu_);
    return answers_;
  }
  // Waits until more than `before` Status answers were given (10 s: a safety net, not a wait).
  bool WaitAnswers(int before) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return answers_ > before; });
  }
  // Update/Abort/Rollback calls received.
  int forwarded() {
    std::lock_guard lock(mu_);
    return forwarded_;
  }
  std::vector<OtaClientV2::UpdateRequest> updates() {
    std::lock_guard lock(mu_);
    return updates_;
  }
  std::vector<OtaClientV2::UpdateRequest> client_updates() {
    std::lock_guard lock(mu_);
    return client_updates_;
  }

 private:
  friend class InlineTransport;
  OtaClientV2::StatusResponse StatusAnswer() {
    std::lock_guard lock(mu_);
    return status_;
  }
  void Answered() {
    std::lock_guard lock(mu_);
    ++answers_;
    cv_.notify_all();
  }
  OtaClientV2::UpdateResponse UpdateAnswer(const OtaClientV2::UpdateRequest& request) {
    std::lock_guard lock(mu_);
    ++forwarded_;
    updates_.push_back(request);
    return update_;
  }
  OtaClientV2::UpdateResponse ClientUpdateAnswer(const OtaClientV2::UpdateRequest& request) {
    std::lock_guard lock(mu_);
    ++forwarded_;
    client_updates_.push_back(request);
    return update_;
  }
  std::optional<OtaClientV2::AbortResponse> AbortAnswer() {
    std::lock_guard lock(mu_);
    ++forwarded_;
    return abort_;
  }
  OtaClientV2::RollbackResponse RollbackAnswer() {
    std::lock_guard lock(mu_);
    ++forwarded_;
    return rollback_;
  }

  std::mutex mu_;
  std::condition_variable cv_;
  OtaClientV2::StatusResponse status_;
  OtaClientV2::UpdateResponse update_;
  std::optional<OtaClientV2::AbortResponse> abort_;
  OtaClientV2::RollbackResponse rollback_;
  std::vector<OtaClientV2::UpdateRequest> updates_;
  std::vector<OtaClientV2::UpdateRequest> client_updates_;
  int answers_ = 0;
  int forwarded_ = 0;
};

class InlineTransport final : public SecondaryTransport {
 public:
  explicit InlineTransport(std::shared_ptr<InlineScript> script) : script_(std::move(script)) {}

  void Update(const OtaClientV2::UpdateRequest& request, std::chrono::milliseconds,
              Done<OtaClientV2::UpdateResponse> done) override {
    done(grpc::Status::OK, script_->UpdateAnswer(request));
  }
  void ClientUpdate(const OtaClientV2::UpdateRequest& request, std::chrono::milliseconds,
                    Done<OtaClientV2::UpdateResponse> done) override {
    done(grpc::Status::OK, script_->ClientUpdateAnswer(request));
  }
  void Status(std::chrono::milliseconds, Done<OtaClientV2::StatusResponse> done) override {
    done(grpc::Status::OK, script_->StatusAnswer());
    script_->Answered();
  }
  void Abort(const OtaClientV2::AbortRequest&, std::chrono::milliseconds,
             Done<OtaClientV2::AbortResponse> done) override {
    std::optional<OtaClientV2::AbortResponse> answer = script_->AbortAnswer();
    if (!answer) {
      done(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, ""), {});
      return;
    }
    done(grpc::Status::OK, std::move(*answer));
  }
  void Rollback(const OtaClientV2::RollbackRequest&, std::chrono::milliseconds,
                Done<OtaClientV2::RollbackResponse> done) override {
    done(grpc::Status::OK, script_->RollbackAnswer());
  }

 private:
  std::shared_ptr<InlineScript> script_;
};

// The scripts of a tree's children, by ECU id.
using InlineScripts = std::map<std::string, std::shared_ptr<InlineScript>>;

// The EcuTree transport factory answering each child from its script in `scripts` (which must
// outlive the tree and hold every child of it).
inline TransportFactory InlineTransports(const InlineScripts& scripts) {
  return [&scripts](const config::SecondaryEcu& child) -> std::unique_ptr<SecondaryTransport> {
    return std::make_unique<InlineTransport>(scripts.at(child.ecu_id));
  };
}

}  // namespace ota::ecu::testing
