// EcuTree's own threads under ThreadSanitizer: the poller, the status cache, the fan-out and the
// orderly-finish wait, with children reached through an in-process SecondaryTransport that
// answers every call on a thread of its own (as gRPC's completion threads do). ecu_tree_test.cc
// runs the same logic over real gRPC; Debian's gRPC is not instrumented, so TSAN cannot follow
// its handoffs and that test is not in the tsan preset (test/CMakeLists.txt).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "otaclient/ecu/ecu_tree.h"
#include "test/unit/ecu/scripted_ecu.h"

namespace ota::ecu {
namespace {

using std::chrono::milliseconds;
using testing::Entry;
using Clock = std::chrono::steady_clock;

// What one child answers; shared by the test (which changes it) and the transport's threads.
class ChildScript {
 public:
  void SetStatus(std::vector<OtaClientV2::StatusResponseEcuV2> entries) {
    std::lock_guard lock(mu_);
    entries_ = std::move(entries);
  }
  void SetStatusDelay(milliseconds delay) {
    std::lock_guard lock(mu_);
    status_delay_ = delay;
  }
  OtaClientV2::StatusResponse StatusAnswer() {
    std::lock_guard lock(mu_);
    ++status_calls_;
    OtaClientV2::StatusResponse response;
    for (const auto& e : entries_) *response.add_ecu_v2() = e;
    return response;
  }
  milliseconds status_delay() {
    std::lock_guard lock(mu_);
    return status_delay_;
  }
  int status_calls() {
    std::lock_guard lock(mu_);
    return status_calls_;
  }
  void RecordUpdate(const OtaClientV2::UpdateRequest& request) {
    std::lock_guard lock(mu_);
    updates_.push_back(request);
  }
  size_t updates() {
    std::lock_guard lock(mu_);
    return updates_.size();
  }

 private:
  std::mutex mu_;
  std::vector<OtaClientV2::StatusResponseEcuV2> entries_;
  milliseconds status_delay_{0};
  int status_calls_ = 0;
  std::vector<OtaClientV2::UpdateRequest> updates_;
};

// Answers each call on a new thread after the script's delay, or DEADLINE_EXCEEDED at the
// call's timeout when the delay is longer (the SecondaryTransport contract). Joins its threads
// when destroyed: EcuTree::Stop() has waited for every `done` by then.
class ThreadedTransport : public SecondaryTransport {
 public:
  explicit ThreadedTransport(std::shared_ptr<ChildScript> script) : script_(std::move(script)) {}
  ~ThreadedTransport() override {
    std::lock_guard lock(mu_);
    for (auto& t : threads_) t.join();
  }

  void Update(const OtaClientV2::UpdateRequest& request, milliseconds /*timeout*/,
              Done<OtaClientV2::UpdateResponse> done) override {
    Spawn([script = script_, request, done = std::move(done)] {
      script->RecordUpdate(request);
      OtaClientV2::UpdateResponse response;
      for (const auto& e : request.ecu()) response.add_ecu()->set_ecu_id(e.ecu_id());
      done(grpc::Status::OK, std::move(response));
    });
  }
  void ClientUpdate(const OtaClientV2::UpdateRequest& request, milliseconds timeout,
                    Done<OtaClientV2::UpdateResponse> done) override {
    Update(request, timeout, std::move(done));
  }
  void Status(milliseconds timeout, Done<OtaClientV2::StatusResponse> done) override {
    const milliseconds delay = script_->status_delay();
    Spawn([script = script_, delay, timeout, done = std::move(done)] {
      if (delay > timeout) {
        std::this_thread::sleep_for(timeout);  // the transport's own deadline, not a sync
        done(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "deadline"), {});
        return;
      }
      std::this_thread::sleep_for(delay);  // a slow child, as the script says
      done(grpc::Status::OK, script->StatusAnswer());
    });
  }
  void Abort(const OtaClientV2::AbortRequest& request, milliseconds /*timeout*/,
             Done<OtaClientV2::AbortResponse> done) override {
    Spawn([request, done = std::move(done)] {
      OtaClientV2::AbortResponse response;
      for (const auto& e : request.ecu()) response.add_ecu()->set_ecu_id(e.ecu_id());
      done(grpc::Status::OK, std::move(response));
    });
  }
  void Rollback(const OtaClientV2::RollbackRequest& request, milliseconds /*timeout*/,
                Done<OtaClientV2::RollbackResponse> done) override {
    Spawn([request, done = std::move(done)] {
      OtaClientV2::RollbackResponse response;
      for (const auto& e : request.ecu()) response.add_ecu()->set_ecu_id(e.ecu_id());
      done(grpc::Status::OK, std::move(response));
    });
  }

 private:
  void Spawn(std::function<void()> work) {
    std::lock_guard lock(mu_);
    threads_.emplace_back(std::move(work));
  }

  std::shared_ptr<ChildScript> script_;
  std::mutex mu_;
  std::vector<std::thread> threads_;
};

bool Eventually(const std::function<bool()>& condition,
                milliseconds timeout = milliseconds(10000)) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return condition();
}

class EcuTreeThreadsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    scripts_["sub1"] = std::make_shared<ChildScript>();
    scripts_["sub1"]->SetStatus(
        {Entry("sub1", OtaClientV2::SUCCESS), Entry("sub1a", OtaClientV2::SUCCESS)});
    scripts_["sub2"] = std::make_shared<ChildScript>();
    scripts_["sub2"]->SetStatus({Entry("sub2", OtaClientV2::SUCCESS)});
    options_.self_ecu_id = "main";
    options_.children = {{"sub1", "127.0.0.2", 50051}, {"sub2", "127.0.0.3", 50051}};
    options_.forward_timeout = milliseconds(1000);
    options_.status_timeout = milliseconds(300);
    options_.poll_interval_active = milliseconds(5);
    options_.poll_interval_idle = milliseconds(10);
    options_.drop_after = milliseconds(60000);
    options_.unreachable_grace = milliseconds(60000);
  }

  void StartTree(std::function<bool()> local_busy = nullptr) {
    tree_ = std::make_unique<EcuTree>(options_, [this](const config::SecondaryEcu& child) {
      return std::make_unique<ThreadedTransport>(scripts_.at(child.ecu_id));
    });
    tree_->Start(std::move(local_busy));
  }

  size_t V2Size() const {
    OtaClientV2::StatusResponse response;
    tree_->AppendChildrenStatus(&response);
    return static_cast<size_t>(response.ecu_v2_size());
  }

  std::map<std::string, std::shared_ptr<ChildScript>> scripts_;
  EcuTreeOptions options_;
  std::unique_ptr<EcuTree> tree_;
};

// Readers on several threads copy the cache while the poller rewrites it and the children's
// answers change under them.
TEST_F(EcuTreeThreadsTest, StatusReadersRacePollerAndChangingAnswers) {
  std::atomic<bool> busy{false};
  StartTree([&] { return busy.load(); });
  ASSERT_TRUE(Eventually([&] { return V2Size() == 3; }));
  std::atomic<bool> stop{false};
  std::vector<std::thread> readers;
  std::atomic<int> reads{0};
  for (int i = 0; i < 4; ++i) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        OtaClientV2::StatusResponse response;
        tree_->AppendChildrenStatus(&response);
        EXPECT_LE(response.ecu_v2_size(), 3);
        reads.fetch_add(1);
      }
    });
  }
  for (int round = 0; round < 20; ++round) {
    busy.store(round % 2 == 0);
    const auto status = round % 2 == 0 ? OtaClientV2::UPDATING : OtaClientV2::SUCCESS;
    scripts_["sub1"]->SetStatus({Entry("sub1", status), Entry("sub1a", status)});
    const int calls = scripts_["sub1"]->status_calls();
    ASSERT_TRUE(Eventually([&] { return scripts_["sub1"]->status_calls() >= calls + 2; }));
  }
  stop.store(true);
  for (auto& t : readers) t.join();
  EXPECT_GT(reads.load(), 0);
  tree_.reset();
}

// Update fans out from several callers at once while Status is read and the poller runs.
TEST_F(EcuTreeThreadsTest, ConcurrentFanOutsAndStatus) {
  StartTree();
  ASSERT_TRUE(Eventually([&] { return V2Size() == 3; }));
  std::vector<std::future<int>> callers;
  for (int i = 0; i < 4; ++i) {
    callers.push_back(std::async(std::launch::async, [&, i] {
      OtaClientV2::UpdateRequest request;
      request.set_request_id("req-" + std::to_string(i));
      for (const char* id : {"sub1a", "sub2"}) request.add_ecu()->set_ecu_id(id);
      const auto response = tree_->Update(request, [](auto*) {});
      OtaClientV2::AbortRequest abort;
      abort.add_ecu()->set_ecu_id("sub2");
      tree_->Abort(abort, [](auto*) {});
      return response.ecu_size();
    }));
  }
  for (int i = 0; i < 200; ++i) V2Size();
  for (auto& f : callers) EXPECT_EQ(f.get(), 2);
  EXPECT_EQ(scripts_["sub1"]->updates(), 4u);
  EXPECT_EQ(scripts_["sub2"]->updates(), 4u);
}

// The orderly-finish wait on one thread, the child's answer changed on another, Stop on a third.
TEST_F(EcuTreeThreadsTest, WaitForChildrenIsReleasedByTheChildOrByStop) {
  scripts_["sub2"]->SetStatus({Entry("sub2", OtaClientV2::UPDATING)});
  StartTree();
  auto waiter = std::async(std::launch::async, [&] { tree_->WaitForChildren(); });
  const int calls = scripts_["sub2"]->status_calls();
  ASSERT_TRUE(Eventually([&] { return scripts_["sub2"]->status_calls() >= calls + 3; }));
  EXPECT_EQ(waiter.wait_for(milliseconds(0)), std::future_status::timeout);
  std::thread changer([&] { scripts_["sub2"]->SetStatus({Entry("sub2", OtaClientV2::SUCCESS)}); });
  EXPECT_EQ(waiter.wait_for(milliseconds(10000)), std::future_status::ready);
  changer.join();

  scripts_["sub1"]->SetStatus({Entry("sub1", OtaClientV2::UPDATING)});
  auto second = std::async(std::launch::async, [&] { tree_->WaitForChildren(); });
  const int sub1_calls = scripts_["sub1"]->status_calls();
  ASSERT_TRUE(Eventually([&] { return scripts_["sub1"]->status_calls() >= sub1_calls + 3; }));
  std::thread stopper([&] { tree_->Stop(); });
  EXPECT_EQ(second.wait_for(milliseconds(10000)), std::future_status::ready);
  stopper.join();
}

// A child slower than the poll deadline: its calls end on their own threads after the tree
// moved on; Stop waits for them before the transports go.
TEST_F(EcuTreeThreadsTest, SlowChildCallsEndAfterStopBegins) {
  scripts_["sub2"]->SetStatusDelay(milliseconds(1000));
  StartTree();
  ASSERT_TRUE(Eventually([&] { return scripts_["sub1"]->status_calls() >= 3; }));
  tree_->PollNow();
  tree_.reset();
}

}  // namespace
}  // namespace ota::ecu
