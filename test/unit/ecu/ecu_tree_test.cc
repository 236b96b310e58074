// EcuTree over real gRPC: scripted secondaries on 127.0.0.2-127.0.0.5 (test/unit/ecu/
// scripted_ecu.h), the real GrpcSecondaryTransport, the real poller thread.
#include "otaclient/ecu/ecu_tree.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "test/lib/ports/port_registry.h"
#include "test/unit/ecu/scripted_ecu.h"
#include "test/unit/service/test_support.h"

namespace ota::ecu {
namespace {

using std::chrono::milliseconds;
using testing::Entry;
using testing::GarbageService;
using testing::ScriptedEcu;
using testing::Serve;
using Clock = std::chrono::steady_clock;

// Polls `condition` every 10 ms until true or `timeout`.
bool Eventually(const std::function<bool()>& condition, milliseconds timeout = milliseconds(5000)) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return condition();
}

struct Child {
  std::string ip;
  int port = 0;
  std::unique_ptr<ScriptedEcu> ecu;
  std::unique_ptr<grpc::Server> server;

  void Start() {
    server = Serve(ip, &port, ecu.get());
    ASSERT_NE(server, nullptr) << ip << ":" << port;
  }
  void Stop() {
    server->Shutdown(std::chrono::system_clock::now());
    server->Wait();
    server.reset();
  }
};

class EcuTreeTest : public ::testing::Test {
 protected:
  // sub1 on 127.0.0.2 with its child sub1a; sub2 on 127.0.0.3.
  void SetUp() override {
    AddChild("sub1", "127.0.0.2", {"sub1", "sub1a"});
    children_["sub1"].ecu->SetStatus(
        {Entry("sub1", OtaClientV2::SUCCESS), Entry("sub1a", OtaClientV2::SUCCESS)});
    // sub2 is restarted on its address in SilentEcusAreDroppedAfterTheTimeoutAndComeBack: a port
    // from the test-port registry, which nobody else can take while it is down (port 0 gives one
    // from the ephemeral range, which any outgoing connection may get meanwhile).
    auto sub2_port = ::ota::testing::ClaimPort();
    ASSERT_TRUE(sub2_port.ok()) << sub2_port.status();
    sub2_port_ = std::move(*sub2_port);
    AddChild("sub2", "127.0.0.3", {"sub2"}, sub2_port_.port());
    children_["sub2"].ecu->SetStatus({Entry("sub2", OtaClientV2::SUCCESS)});
    options_.self_ecu_id = "main";
    options_.forward_timeout = milliseconds(1000);
    options_.status_timeout = milliseconds(300);
    options_.poll_interval_active = milliseconds(50);
    options_.poll_interval_idle = milliseconds(100);
    options_.drop_after = milliseconds(400);
    options_.unreachable_grace = milliseconds(60000);
  }
  void TearDown() override {
    tree_.reset();
    for (auto& [id, child] : children_) {
      if (child.server) child.Stop();
    }
  }

  // A scripted child on `ip`:`port` (0: any free port).
  void AddChild(const std::string& id, const std::string& ip, std::set<std::string> subtree,
                int port = 0) {
    Child& child = children_[id];
    child.ip = ip;
    child.port = port;
    child.ecu = std::make_unique<ScriptedEcu>(std::move(subtree));
    child.Start();
    options_.children.push_back({id, ip, static_cast<uint16_t>(child.port)});
  }

  void StartTree(std::function<bool()> local_busy = nullptr) {
    tree_ = std::make_unique<EcuTree>(options_);
    tree_->Start(std::move(local_busy));
  }

  OtaClientV2::StatusResponse Status() const {
    OtaClientV2::StatusResponse response;
    tree_->AppendChildrenStatus(&response);
    return response;
  }
  // "id:STATUS" of every ecu_v2 entry, in order.
  std::vector<std::string> V2() const {
    std::vector<std::string> out;
    const OtaClientV2::StatusResponse status = Status();
    for (const auto& e : status.ecu_v2()) {
      out.push_back(e.ecu_id() + ":" + OtaClientV2::StatusOta_Name(e.ota_status()));
    }
    return out;
  }
  // "id:result" of every v1 entry.
  std::vector<std::string> V1() const {
    std::vector<std::string> out;
    const OtaClientV2::StatusResponse status = Status();
    for (const auto& e : status.ecu()) {
      out.push_back(e.ecu_id() + ":" + std::to_string(e.result()) +
                    (e.has_status() ? ":" + OtaClientV2::StatusOta_Name(e.status().status()) : ""));
    }
    return out;
  }

  std::map<std::string, Child> children_;
  EcuTreeOptions options_;
  std::unique_ptr<EcuTree> tree_;
  std::unique_ptr<service::testing::ClosedPort> closed_port_;
  ::ota::testing::PortClaim sub2_port_;
};

using Strings = std::vector<std::string>;

TEST_F(EcuTreeTest, StatusMergesChildrenWithTheirDescendantsInBothViews) {
  StartTree();
  // Before the first answers, the direct children are listed as not heard (v1 only).
  ASSERT_TRUE(Eventually([&] { return V2().size() == 3; })) << ::testing::PrintToString(V1());
  EXPECT_EQ(V2(), (Strings{"sub1:SUCCESS", "sub1a:SUCCESS", "sub2:SUCCESS"}));
  EXPECT_EQ(V1(), (Strings{"sub1:0:SUCCESS", "sub1a:0:SUCCESS", "sub2:0:SUCCESS"}));
  EXPECT_EQ(Status().available_ecu_ids_size(), 0);  // the service fills those from ecu_info

  children_["sub1"].ecu->SetStatus(
      {Entry("sub1", OtaClientV2::UPDATING), Entry("sub1a", OtaClientV2::FAILURE)});
  EXPECT_TRUE(Eventually([&] {
    return V2() == Strings{"sub1:UPDATING", "sub1a:FAILURE", "sub2:SUCCESS"};
  })) << ::testing::PrintToString(V2());
}

TEST_F(EcuTreeTest, SilentEcusAreDroppedAfterTheTimeoutAndComeBack) {
  StartTree();
  ASSERT_TRUE(Eventually([&] { return V2().size() == 3; }));
  const int port = children_["sub2"].port;
  const auto stopped = Clock::now();
  children_["sub2"].Stop();
  ASSERT_TRUE(Eventually([&] { return V2().size() == 2; }));
  // Kept while within drop_after (its last status), dropped after it.
  // (its last answer came at most one idle poll interval before the stop)
  EXPECT_GE(Clock::now() - stopped, *options_.drop_after - options_.poll_interval_idle);
  EXPECT_EQ(V2(), (Strings{"sub1:SUCCESS", "sub1a:SUCCESS"}));
  EXPECT_EQ(V1(), (Strings{"sub1:0:SUCCESS", "sub1a:0:SUCCESS", "sub2:1"}));

  // The grandchild disappears from its parent's answer: dropped too, its sibling stays.
  children_["sub1"].ecu->SetStatus({Entry("sub1", OtaClientV2::SUCCESS)});
  ASSERT_TRUE(Eventually([&] { return V2() == Strings{"sub1:SUCCESS"}; }));
  EXPECT_EQ(V1(), (Strings{"sub1:0:SUCCESS", "sub1a:1", "sub2:1"}));

  // A restarted child (same address) is seen again within the reconnect backoff.
  children_["sub2"].port = port;
  children_["sub2"].Start();
  EXPECT_TRUE(Eventually([&] {
    return V2() == Strings{"sub1:SUCCESS", "sub2:SUCCESS"};
  })) << ::testing::PrintToString(V2());
}

// Without a drop timeout, a silent ECU leaves ecu_v2 after three poll intervals, like upstream:
// the active interval's while an update runs, the idle one's otherwise.
TEST_F(EcuTreeTest, DefaultDropWindowIsThreePollIntervals) {
  options_.drop_after.reset();
  options_.poll_interval_active = milliseconds(50);
  options_.poll_interval_idle = milliseconds(1000);
  std::atomic<bool> busy{false};
  StartTree([&] { return busy.load(); });
  ASSERT_TRUE(Eventually([&] { return V2().size() == 3; }));

  // Idle: kept for at least two idle intervals after its last answer.
  auto stopped = Clock::now();
  children_["sub2"].Stop();
  ASSERT_TRUE(Eventually([&] { return V2().size() == 2; }, milliseconds(10000)));
  EXPECT_GE(Clock::now() - stopped, 3 * options_.poll_interval_idle - options_.poll_interval_idle);
  EXPECT_EQ(V1(), (Strings{"sub1:0:SUCCESS", "sub1a:0:SUCCESS", "sub2:1"}));

  // While this ECU updates: the grandchild that disappears from its parent's answer is gone
  // well before one idle window.
  busy = true;
  children_["sub1"].ecu->SetStatus({Entry("sub1", OtaClientV2::SUCCESS)});
  stopped = Clock::now();
  ASSERT_TRUE(Eventually([&] { return V2() == Strings{"sub1:SUCCESS"}; }));
  EXPECT_LT(Clock::now() - stopped, 2 * options_.poll_interval_idle);
}

OtaClientV2::AbortResponseEcu AbortAnswer(const std::string& id,
                                          OtaClientV2::AbortFailureType result,
                                          const std::string& message) {
  OtaClientV2::AbortResponseEcu answer;
  answer.set_ecu_id(id);
  answer.set_result(result);
  answer.set_message(message);
  return answer;
}

// Upstream's Abort: every direct child gets the request whatever it lists; the answer is each
// child's whole answer (grandchildren included), a child without the endpoint named as such,
// then this ECU's own.
TEST_F(EcuTreeTest, AbortGoesToEveryChildWhateverTheRequestLists) {
  children_["sub1"].ecu->SetAbortAnswers(
      {AbortAnswer("sub1a", OtaClientV2::ABORT_NO_FAILURE,
                   "Abort accepted, aborting update immediately"),
       AbortAnswer("sub1", OtaClientV2::ABORT_FAILURE,
                   "Cannot abort: no active OTA update in progress")});
  StartTree();
  ASSERT_TRUE(Eventually([&] { return V2().size() == 3; }));
  OtaClientV2::AbortRequest request;
  request.set_request_id("req-abort");
  request.add_ecu()->set_ecu_id("sub1a");  // names neither sub2 nor this ECU
  bool local_called = false;
  const OtaClientV2::AbortResponse response = tree_->Abort(request, [&](auto* out) {
    local_called = true;
    *out->add_ecu() = AbortAnswer("main", OtaClientV2::ABORT_NO_FAILURE,
                                  "Abort accepted, aborting update immediately");
  });
  EXPECT_TRUE(local_called);
  ASSERT_EQ(children_["sub1"].ecu->aborts().size(), 1u);
  ASSERT_EQ(children_["sub2"].ecu->aborts().size(), 1u);
  EXPECT_EQ(children_["sub2"].ecu->aborts()[0].request_id(), "req-abort");
  std::vector<std::string> answers;
  for (const auto& e : response.ecu()) {
    answers.push_back(e.ecu_id() + ":" + std::to_string(e.result()) + ":" + e.message());
  }
  EXPECT_EQ(answers, (Strings{"sub1a:0:Abort accepted, aborting update immediately",
                              "sub1:1:Cannot abort: no active OTA update in progress",
                              "sub2:1:ECU sub2 does not support the abort endpoint (UNIMPLEMENTED)",
                              "main:0:Abort accepted, aborting update immediately"}));
}

TEST_F(EcuTreeTest, SlowOrGarbageChildrenNeverSlowStatusDown) {
  // A third child that answers bytes that are no message, a fourth that hangs.
  GarbageService garbage;
  int garbage_port = 0;
  auto garbage_server = Serve("127.0.0.4", &garbage_port, nullptr, &garbage);
  ASSERT_NE(garbage_server, nullptr);
  options_.children.push_back({"junk", "127.0.0.4", static_cast<uint16_t>(garbage_port)});
  AddChild("slow", "127.0.0.5", {"slow"});
  children_["slow"].ecu->SetStatus({Entry("slow", OtaClientV2::SUCCESS)});
  children_["slow"].ecu->SetDelays(milliseconds(2000), milliseconds(0));

  StartTree();
  ASSERT_TRUE(Eventually([&] { return V2().size() == 3; }));
  // Everyone else keeps being polled while "slow" hangs.
  const int before = children_["sub2"].ecu->status_calls();
  ASSERT_TRUE(Eventually([&] { return children_["sub2"].ecu->status_calls() >= before + 3; }));
  auto worst = Clock::duration::zero();
  for (int i = 0; i < 200; ++i) {
    const auto start = Clock::now();
    OtaClientV2::StatusResponse response;
    tree_->AppendChildrenStatus(&response);
    worst = std::max(worst, Clock::now() - start);
  }
  EXPECT_LT(worst, milliseconds(5));
  EXPECT_EQ(V2(), (Strings{"sub1:SUCCESS", "sub1a:SUCCESS", "sub2:SUCCESS"}));
  EXPECT_EQ(V1(),
            (Strings{"sub1:0:SUCCESS", "sub1a:0:SUCCESS", "sub2:0:SUCCESS", "junk:1", "slow:1"}));
  tree_.reset();
  garbage_server->Shutdown(std::chrono::system_clock::now());
}

OtaClientV2::UpdateRequest Request(const std::vector<std::string>& ids) {
  OtaClientV2::UpdateRequest request;
  request.set_request_id("req-42");
  for (const auto& id : ids) {
    auto* e = request.add_ecu();
    e->set_ecu_id(id);
    e->set_version("v2");
    e->set_url("http://127.0.0.1/v2");
  }
  return request;
}

std::vector<std::string> Answers(const OtaClientV2::UpdateResponse& response) {
  std::vector<std::string> out;
  for (const auto& e : response.ecu()) {
    out.push_back(e.ecu_id() + ":" + std::to_string(e.result()) +
                  (e.message().empty() ? "" : ":" + e.message()));
  }
  return out;
}

TEST_F(EcuTreeTest, UpdateGoesOnlyToTheSubtreesNamedAndMarksThemUpdating) {
  StartTree();
  ASSERT_TRUE(Eventually([&] { return V2().size() == 3; }));  // subtrees known
  bool local_called = false;
  const auto response = tree_->Update(Request({"sub1a", "main"}), [&](auto* out) {
    local_called = true;
    auto* own = out->add_ecu();
    own->set_ecu_id("main");
  });
  EXPECT_TRUE(local_called);
  EXPECT_EQ(Answers(response), (Strings{"main:0", "sub1a:0"}));
  ASSERT_EQ(children_["sub1"].ecu->updates().size(), 1u);
  EXPECT_EQ(children_["sub1"].ecu->updates()[0].request_id(), "req-42");
  EXPECT_EQ(children_["sub1"].ecu->updates()[0].ecu_size(), 2);  // the whole request
  EXPECT_TRUE(children_["sub2"].ecu->updates().empty());
  // At once, without waiting for a poll.
  EXPECT_EQ(V2(), (Strings{"sub1:SUCCESS", "sub1a:UPDATING", "sub2:SUCCESS"}));
}

TEST_F(EcuTreeTest, ClientUpdateGoesWhereUpdateGoesAndLeavesTheCacheAlone) {
  StartTree();
  ASSERT_TRUE(Eventually([&] { return V2().size() == 3; }));  // subtrees known
  const auto response = tree_->ClientUpdate(Request({"sub1a", "main"}),
                                            [&](auto* out) { out->add_ecu()->set_ecu_id("main"); });
  EXPECT_EQ(Answers(response), (Strings{"main:0", "sub1a:0"}));
  ASSERT_EQ(children_["sub1"].ecu->client_updates().size(), 1u);
  EXPECT_EQ(children_["sub1"].ecu->client_updates()[0].ecu_size(), 2);  // the whole request
  EXPECT_TRUE(children_["sub1"].ecu->updates().empty());
  EXPECT_TRUE(children_["sub2"].ecu->client_updates().empty());
  // The children report CLIENT_UPDATING themselves; nothing is marked UPDATING here.
  EXPECT_EQ(V2(), (Strings{"sub1:SUCCESS", "sub1a:SUCCESS", "sub2:SUCCESS"}));
}

TEST_F(EcuTreeTest, SlowAndDeadChildrenAnswerRecoverableWithinTheDeadline) {
  closed_port_ = std::make_unique<service::testing::ClosedPort>();
  options_.children.push_back({"dead", "127.0.0.1", static_cast<uint16_t>(closed_port_->port())});
  children_["sub2"].ecu->SetDelays(milliseconds(0), milliseconds(1500));
  StartTree();
  // Connected first (a call racing the channel's very first connect may fail UNAVAILABLE,
  // which is a correct but different answer).
  ASSERT_TRUE(Eventually([&] { return V2().size() == 3; }));
  const auto start = Clock::now();
  // "dead" never answered, so its subtree is unknown: "ghost" is tried there too.
  const auto response = tree_->Update(Request({"sub1", "sub2", "dead", "ghost"}), [](auto*) {});
  const auto took = Clock::now() - start;
  EXPECT_LT(took, options_.forward_timeout + milliseconds(700));
  const Strings answers = Answers(response);
  ASSERT_EQ(answers.size(), 4u);
  EXPECT_EQ(answers[0], "sub1:0");
  EXPECT_EQ(answers[1],
            "sub2:1:ECU sub2: secondary sub2 (127.0.0.3:" + std::to_string(children_["sub2"].port) +
                ") did not answer Update within 1000 ms");
  EXPECT_TRUE(answers[2].starts_with("dead:1:ECU dead: secondary dead (127.0.0.1:")) << answers[2];
  EXPECT_NE(answers[2].find("is unreachable"), std::string::npos) << answers[2];
  EXPECT_TRUE(answers[3].starts_with("ghost:1:unknown ECU id \"ghost\"")) << answers[3];
}

TEST_F(EcuTreeTest, WaitForChildrenBlocksWhileAChildUpdates) {
  children_["sub2"].ecu->SetStatus({Entry("sub2", OtaClientV2::UPDATING)});
  StartTree();
  auto waiter = std::async(std::launch::async, [&] { tree_->WaitForChildren(); });
  // Still blocked after several polls saw sub2 UPDATING.
  const int calls = children_["sub2"].ecu->status_calls();
  ASSERT_TRUE(Eventually([&] { return children_["sub2"].ecu->status_calls() >= calls + 3; }));
  EXPECT_EQ(waiter.wait_for(milliseconds(0)), std::future_status::timeout);
  children_["sub2"].ecu->SetStatus({Entry("sub2", OtaClientV2::SUCCESS)});
  EXPECT_EQ(waiter.wait_for(milliseconds(5000)), std::future_status::ready);
}

TEST_F(EcuTreeTest, WaitForChildrenGivesUpOnAChildSilentLongerThanTheGrace) {
  options_.unreachable_grace = milliseconds(500);
  children_["sub2"].ecu->SetStatus({Entry("sub2", OtaClientV2::UPDATING)});
  StartTree();
  ASSERT_TRUE(Eventually([&] { return V2().size() == 3; }));
  children_["sub2"].Stop();
  const auto start = Clock::now();
  tree_->WaitForChildren();
  EXPECT_GE(Clock::now() - start, milliseconds(300));
  EXPECT_LT(Clock::now() - start, milliseconds(3000));
}

TEST_F(EcuTreeTest, StopReleasesWaitForChildren) {
  children_["sub1"].ecu->SetStatus({Entry("sub1", OtaClientV2::UPDATING)});
  StartTree();
  auto waiter = std::async(std::launch::async, [&] { tree_->WaitForChildren(); });
  ASSERT_TRUE(Eventually([&] { return V2() == Strings{"sub1:UPDATING", "sub2:SUCCESS"}; }));
  EXPECT_EQ(waiter.wait_for(milliseconds(0)), std::future_status::timeout);
  tree_->Stop();
  EXPECT_EQ(waiter.wait_for(milliseconds(2000)), std::future_status::ready);
}

// The re-exec window of a mid-level ECU (e2e_multi_ecu_proxy_tree's rare "cache kept"): sub1
// waits for sub1a, re-executes on its new slot, fails a few calls meanwhile, then serves Status
// before its first poll of sub1a returned: its own entry SUCCESS, sub1a only as a v1 "not heard"
// placeholder. That answer is not the end of sub1's subtree: the main keeps waiting until sub1
// reports sub1a again, so the view the otaproxy purge reads afterwards has every ECU.
TEST_F(EcuTreeTest, WaitForChildrenWaitsUntilAChildReportsItsWholeSubtreeAgain) {
  ScriptedEcu& sub1 = *children_["sub1"].ecu;
  sub1.SetStatus({Entry("sub1", OtaClientV2::UPDATING), Entry("sub1a", OtaClientV2::SUCCESS)});
  StartTree();
  ASSERT_TRUE(Eventually([&] {
    return V2() == Strings{"sub1:UPDATING", "sub1a:SUCCESS", "sub2:SUCCESS"};
  })) << ::testing::PrintToString(V2());
  auto waiter = std::async(std::launch::async, [&] { tree_->WaitForChildren(); });

  // Re-executing: calls fail (gRPC answered RESOURCE_EXHAUSTED there), a transient error.
  sub1.SetStatusError(
      grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "Server Threadpool Exhausted"));
  int calls = sub1.status_calls();
  ASSERT_TRUE(Eventually([&] { return sub1.status_calls() >= calls + 3; }));
  EXPECT_EQ(waiter.wait_for(milliseconds(0)), std::future_status::timeout);

  // Back, answering before its first poll of sub1a returned. sub1a leaves the main's ecu_v2
  // (drop_after) meanwhile: a purge decided now would find it missing.
  sub1.SetStatus({Entry("sub1", OtaClientV2::SUCCESS)});
  sub1.SetNotHeard({"sub1a"});
  sub1.SetStatusError(grpc::Status::OK);
  ASSERT_TRUE(Eventually([&] {
    return V2() == Strings{"sub1:SUCCESS", "sub2:SUCCESS"};
  })) << ::testing::PrintToString(V2());
  calls = sub1.status_calls();
  ASSERT_TRUE(Eventually([&] { return sub1.status_calls() >= calls + 3; }));
  EXPECT_EQ(waiter.wait_for(milliseconds(0)), std::future_status::timeout)
      << "WaitForChildren took sub1's SUCCESS as the end of its subtree while sub1a was "
         "not reported";

  // sub1 heard from sub1a: its answer is complete, the wait ends, everyone is in the view.
  sub1.SetStatus({Entry("sub1", OtaClientV2::SUCCESS), Entry("sub1a", OtaClientV2::SUCCESS)});
  sub1.SetNotHeard({});
  ASSERT_EQ(waiter.wait_for(milliseconds(5000)), std::future_status::ready);
  EXPECT_EQ(V2(), (Strings{"sub1:SUCCESS", "sub1a:SUCCESS", "sub2:SUCCESS"}));
}

// A child that is no longer busy itself (aborted, or restarted and idle) while an ECU below it
// still updates: the main waits for that ECU too (upstream: busy at any depth blocks).
TEST_F(EcuTreeTest, WaitForChildrenWaitsForABusyEcuBelowAnIdleChild) {
  ScriptedEcu& sub1 = *children_["sub1"].ecu;
  sub1.SetStatus({Entry("sub1", OtaClientV2::ABORTED), Entry("sub1a", OtaClientV2::UPDATING)});
  StartTree();
  auto waiter = std::async(std::launch::async, [&] { tree_->WaitForChildren(); });
  ASSERT_TRUE(Eventually([&] {
    return V2() == Strings{"sub1:ABORTED", "sub1a:UPDATING", "sub2:SUCCESS"};
  }));
  const int calls = sub1.status_calls();
  ASSERT_TRUE(Eventually([&] { return sub1.status_calls() >= calls + 3; }));
  EXPECT_EQ(waiter.wait_for(milliseconds(0)), std::future_status::timeout);
  sub1.SetStatus({Entry("sub1", OtaClientV2::ABORTED), Entry("sub1a", OtaClientV2::SUCCESS)});
  EXPECT_EQ(waiter.wait_for(milliseconds(5000)), std::future_status::ready);
}

// A child's answer without its own entry says nothing about it: not "done".
TEST_F(EcuTreeTest, WaitForChildrenDoesNotTakeAnAnswerWithoutTheChildsOwnEntryAsDone) {
  ScriptedEcu& sub2 = *children_["sub2"].ecu;
  sub2.SetStatus({});
  sub2.SetNotHeard({"sub2"});
  StartTree();
  auto waiter = std::async(std::launch::async, [&] { tree_->WaitForChildren(); });
  const int calls = sub2.status_calls();
  ASSERT_TRUE(Eventually([&] { return sub2.status_calls() >= calls + 3; }));
  EXPECT_EQ(waiter.wait_for(milliseconds(0)), std::future_status::timeout);
  sub2.SetStatus({Entry("sub2", OtaClientV2::SUCCESS)});
  EXPECT_EQ(waiter.wait_for(milliseconds(5000)), std::future_status::ready);
}

// The subtree wait is bounded like the wait for a child: an ECU below a child that the child
// stops reporting stops blocking once it has not been heard of for the grace period.
TEST_F(EcuTreeTest, WaitForChildrenGivesUpOnAnEcuBelowAChildSilentLongerThanTheGrace) {
  options_.unreachable_grace = milliseconds(1000);
  ScriptedEcu& sub1 = *children_["sub1"].ecu;
  StartTree();
  ASSERT_TRUE(Eventually([&] { return V2().size() == 3; }));
  sub1.SetStatus({Entry("sub1", OtaClientV2::SUCCESS)});
  sub1.SetNotHeard({"sub1a"});
  const auto last_reported = Clock::now();
  tree_->WaitForChildren();
  const auto waited = Clock::now() - last_reported;
  // sub1a's last report came in around `last_reported` (a poll interval earlier, or more when
  // the loaded machine delays a poll): the wait lasted about the grace, not zero, not forever.
  EXPECT_GE(waited, options_.unreachable_grace / 2);
  EXPECT_LT(waited, options_.unreachable_grace + milliseconds(3000));
  EXPECT_EQ(V2(), (Strings{"sub1:SUCCESS", "sub2:SUCCESS"}));
}

TEST(EcuTreeNoChildrenTest, EverythingIsLocal) {
  EcuTreeOptions options;
  options.self_ecu_id = "solo";
  EcuTree tree(options);
  tree.Start(nullptr);
  tree.WaitForChildren();  // returns at once
  const auto response = tree.Update(Request({"solo", "other"}),
                                    [](auto* out) { out->add_ecu()->set_ecu_id("solo"); });
  ASSERT_EQ(response.ecu_size(), 2);
  EXPECT_EQ(response.ecu(1).ecu_id(), "other");
  EXPECT_EQ(response.ecu(1).result(), OtaClientV2::RECOVERABLE);
  OtaClientV2::StatusResponse status;
  tree.AppendChildrenStatus(&status);
  EXPECT_EQ(status.ecu_size(), 0);
}

}  // namespace
}  // namespace ota::ecu
