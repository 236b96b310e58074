// Issue 17: limits on what a secondary answers (otaclient/ecu/child_answer.h). Table tests of
// the checks with nasty vectors, then the ECU tree with children that answer them, through an
// in-process transport: a refused answer is that child's failure with its reason and nothing of
// it is merged; a child cannot speak for this ECU or its siblings; a child inventing ECU ids
// cannot grow what the tree keeps.
#include "otaclient/ecu/child_answer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "otaclient/ecu/ecu_tree.h"
#include "test/unit/ecu/inline_transport.h"
#include "test/unit/ecu/scripted_ecu.h"

namespace ota::ecu {
namespace {

using std::chrono::milliseconds;
using testing::Entry;
using testing::InlineScript;
using testing::InlineScripts;
using testing::InlineTransports;
using Strings = std::vector<std::string>;

// A valid answer of sub1: itself and its child sub1a, both SUCCESS, fully filled.
OtaClientV2::StatusResponse GoodStatus() {
  OtaClientV2::StatusResponse answer;
  for (const char* id : {"sub1", "sub1a"}) {
    OtaClientV2::StatusResponseEcuV2 entry = Entry(id, OtaClientV2::SUCCESS);
    entry.set_otaclient_version("3.9.0");
    entry.set_release_name("release");
    entry.set_failure_type(OtaClientV2::NO_FAILURE);
    entry.set_failure_reason("");
    *answer.add_ecu_v2() = entry;
    OtaClientV2::StatusResponseEcu* v1 = answer.add_ecu();
    v1->set_ecu_id(id);
    v1->mutable_status()->set_status(OtaClientV2::SUCCESS);
    v1->mutable_status()->set_version("v1");
  }
  answer.add_available_ecu_ids("sub1");
  answer.add_available_ecu_ids("sub1a");
  return answer;
}

struct StatusCase {
  const char* name;
  std::function<void(OtaClientV2::StatusResponse&)> edit;
  std::string reason;  // the whole message
};

// Every way a Status answer is refused, each with the message that names the field.
std::vector<StatusCase> BadStatusAnswers() {
  const std::string long_id(256, 'x');
  return {
      {"id over 255 bytes", [=](auto& a) { a.mutable_ecu_v2(1)->set_ecu_id(long_id); },
       "ecu_v2[1].ecu_id: ECU id longer than 255 bytes"},
      {"empty id", [](auto& a) { a.mutable_ecu_v2(1)->set_ecu_id(""); },
       "ecu_v2[1].ecu_id is empty"},
      {"duplicate id in ecu_v2", [](auto& a) { a.mutable_ecu_v2(1)->set_ecu_id("sub1"); },
       "ecu_v2[1].ecu_id \"sub1\" is listed twice in ecu_v2"},
      {"duplicate id in the v1 view", [](auto& a) { a.mutable_ecu(1)->set_ecu_id("sub1"); },
       "ecu[1].ecu_id \"sub1\" is listed twice in ecu"},
      {"NUL in an id", [](auto& a) { a.mutable_ecu_v2(1)->set_ecu_id(std::string("sub\0a", 5)); },
       "ecu_v2[1].ecu_id: ECU id contains a control character: \"sub\\x00a\""},
      {"control character in an id", [](auto& a) { a.mutable_ecu_v2(0)->set_ecu_id("sub\n1"); },
       "ecu_v2[0].ecu_id: ECU id contains a control character: \"sub\\x0a1\""},
      {"leading space in an id", [](auto& a) { a.mutable_ecu_v2(0)->set_ecu_id(" sub1"); },
       "ecu_v2[0].ecu_id: ECU id has leading or trailing spaces: \" sub1\""},
      {"invalid UTF-8 in an id", [](auto& a) { a.mutable_ecu_v2(0)->set_ecu_id("sub\xff"); },
       "ecu_v2[0].ecu_id: ECU id is not valid UTF-8"},
      {"invalid UTF-8 in a v1 id", [](auto& a) { a.mutable_ecu(0)->set_ecu_id("\xc0\x80"); },
       "ecu[0].ecu_id: ECU id is not valid UTF-8"},
      {"NUL in firmware_version",
       [](auto& a) { a.mutable_ecu_v2(0)->set_firmware_version(std::string("v\0", 2)); },
       "ecu_v2[0].firmware_version contains a NUL byte"},
      {"invalid UTF-8 in failure_reason",
       [](auto& a) { a.mutable_ecu_v2(1)->set_failure_reason("bad \xed\xa0\x80 surrogate"); },
       "ecu_v2[1].failure_reason is not valid UTF-8"},
      {"invalid UTF-8 in a v1 failure_reason",
       [](auto& a) { a.mutable_ecu(1)->mutable_status()->set_failure_reason("\xfe"); },
       "ecu[1].status.failure_reason is not valid UTF-8"},
      {"huge failure_reason",
       [](auto& a) { a.mutable_ecu_v2(0)->set_failure_reason(std::string(40000, 'r')); },
       "ecu_v2[0].failure_reason is 40000 bytes; at most 32768 are accepted"},
      {"huge failure_traceback",
       [](auto& a) { a.mutable_ecu_v2(0)->set_failure_traceback(std::string(200000, 't')); },
       "ecu_v2[0].failure_traceback is 200000 bytes; at most 131072 are accepted"},
      {"huge release_id",
       [](auto& a) { a.mutable_ecu_v2(1)->set_release_id(std::string(1025, 'r')); },
       "ecu_v2[1].release_id is 1025 bytes; at most 1024 are accepted"},
      {"huge update_firmware_version",
       [](auto& a) {
         a.mutable_ecu_v2(1)->mutable_update_status()->set_update_firmware_version(
             std::string(3 << 20, 'v'));
       },
       "ecu_v2[1].update_status.update_firmware_version is 3145728 bytes; at most 1024 are "
       "accepted"},
      {"huge v1 version",
       [](auto& a) { a.mutable_ecu(0)->mutable_status()->set_version(std::string(2000, 'v')); },
       "ecu[0].status.version is 2000 bytes; at most 1024 are accepted"},
      {"257 ecu_v2 entries",
       [](auto& a) {
         for (int i = 0; i < 255; ++i) {
           *a.add_ecu_v2() = Entry("e" + std::to_string(i), OtaClientV2::SUCCESS);
         }
       },
       "ecu_v2: 257 entries; at most 256 are accepted"},
      {"257 available_ecu_ids",
       [](auto& a) {
         for (int i = 0; i < 255; ++i) a.add_available_ecu_ids("e" + std::to_string(i));
       },
       "available_ecu_ids: 257 entries; at most 256 are accepted"},
      {"NUL in available_ecu_ids",
       [](auto& a) { a.set_available_ecu_ids(1, std::string("\0", 1)); },
       "available_ecu_ids[1]: ECU id contains a control character: \"\\x00\""},
      {"more distinct ids in all than one tree has",
       [](auto& a) {
         for (int i = 0; i < 200; ++i) {
           *a.add_ecu_v2() = Entry("v2-" + std::to_string(i), OtaClientV2::SUCCESS);
           a.add_available_ecu_ids("avail-" + std::to_string(i));
         }
       },
       "the answer names 402 distinct ECU ids; at most 256 are accepted"},
  };
}

TEST(CheckChildAnswerTest, StatusAnswerVectors) {
  EXPECT_TRUE(CheckChildAnswer(GoodStatus()).ok());
  EXPECT_TRUE(CheckChildAnswer(OtaClientV2::StatusResponse()).ok());
  for (const StatusCase& c : BadStatusAnswers()) {
    OtaClientV2::StatusResponse answer = GoodStatus();
    c.edit(answer);
    const absl::Status refused = CheckChildAnswer(answer);
    EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_EQ(refused.message(), c.reason) << c.name;
  }
}

TEST(CheckChildAnswerTest, EveryStatusFieldAtItsLimitPasses) {
  const ChildAnswerLimits limits;
  OtaClientV2::StatusResponse answer = GoodStatus();
  OtaClientV2::StatusResponseEcuV2* e = answer.mutable_ecu_v2(0);
  e->set_ecu_id(std::string(255, 'i'));
  e->set_firmware_version(std::string(limits.max_field_bytes, 'f'));
  e->set_otaclient_version(std::string(limits.max_field_bytes, 'o'));
  e->set_release_name(std::string(limits.max_field_bytes, 'n'));
  e->set_release_id(std::string(limits.max_field_bytes, 'r'));
  e->set_image_id(std::string(limits.max_field_bytes, 'm'));
  e->set_failure_reason(std::string(limits.max_text_bytes - 2, 'x') + "\xc3\xa9");  // é
  e->set_failure_traceback(std::string(limits.max_traceback_bytes, 't'));
  e->mutable_update_status()->set_update_firmware_version(std::string(limits.max_field_bytes, 'u'));
  answer.mutable_ecu(0)->mutable_status()->set_failure_reason("line 1\nline 2\ttab");
  // 255 entries and "sub1" (in the v1 view): max_entries distinct ids in all.
  while (answer.ecu_v2_size() < static_cast<int>(limits.max_entries) - 1) {
    *answer.add_ecu_v2() = Entry("e" + std::to_string(answer.ecu_v2_size()), OtaClientV2::SUCCESS);
  }
  const absl::Status ok = CheckChildAnswer(answer);
  EXPECT_TRUE(ok.ok()) << ok;
}

TEST(CheckChildAnswerTest, PerEcuAnswerVectors) {
  OtaClientV2::UpdateResponse update;
  // Ids echo the request: any UTF-8 up to a request's limit, NUL included, and the same id
  // twice (a request naming an ECU twice gets two answers for it).
  update.add_ecu()->set_ecu_id(std::string("odd\0id", 6));
  update.add_ecu()->set_ecu_id("");
  update.add_ecu()->set_ecu_id(std::string(256, 'i'));
  update.add_ecu()->set_ecu_id("sub1");
  update.add_ecu()->set_ecu_id("sub1");
  update.mutable_ecu(0)->set_message(std::string("unknown ECU id \"odd\0id\"", 23));
  EXPECT_TRUE(CheckChildAnswer(update).ok());

  struct Case {
    const char* name;
    std::function<void(OtaClientV2::UpdateResponse&)> edit;
    std::string reason;
  };
  const Case cases[] = {
      {"id over a request's limit",
       [](auto& a) { a.mutable_ecu(2)->set_ecu_id(std::string(257, 'i')); },
       "ecu[2].ecu_id is 257 bytes; at most 256 are accepted"},
      {"invalid UTF-8 in an id", [](auto& a) { a.mutable_ecu(3)->set_ecu_id("\x80"); },
       "ecu[3].ecu_id is not valid UTF-8"},
      {"invalid UTF-8 in a message", [](auto& a) { a.mutable_ecu(1)->set_message("ok\xf8"); },
       "ecu[1].message is not valid UTF-8"},
      {"huge message", [](auto& a) { a.mutable_ecu(4)->set_message(std::string(3 << 20, 'm')); },
       "ecu[4].message is 3145728 bytes; at most 32768 are accepted"},
      {"10,000 entries",
       [](auto& a) {
         for (int i = 0; i < 10000; ++i) a.add_ecu()->set_ecu_id("e");
       },
       "ecu: 10005 entries; at most 256 are accepted"},
  };
  for (const Case& c : cases) {
    OtaClientV2::UpdateResponse answer = update;
    c.edit(answer);
    EXPECT_EQ(CheckChildAnswer(answer).message(), c.reason) << c.name;
  }
  // Abort and Rollback answers follow the same rules.
  OtaClientV2::AbortResponse abort;
  abort.add_ecu()->set_message(std::string(40000, 'a'));
  EXPECT_EQ(CheckChildAnswer(abort).message(),
            "ecu[0].message is 40000 bytes; at most 32768 are accepted");
  OtaClientV2::RollbackResponse rollback;
  rollback.add_ecu()->set_ecu_id("\xff");
  EXPECT_EQ(CheckChildAnswer(rollback).message(), "ecu[0].ecu_id is not valid UTF-8");
}

OtaClientV2::UpdateResponseEcu UpdateAnswer(const std::string& id, const std::string& message) {
  OtaClientV2::UpdateResponseEcu answer;
  answer.set_ecu_id(id);
  answer.set_result(OtaClientV2::NO_FAILURE);
  answer.set_message(message);
  return answer;
}

// main → sub1 (127.0.0.2, with sub1a below) and sub2 (127.0.0.3). Nothing polls on its own
// (hour-long intervals): the first poll of each child happens at Start(), the next on Poll().
class ChildAnswerTreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* id : {"sub1", "sub2"}) scripts_[id] = std::make_shared<InlineScript>();
    scripts_["sub1"]->SetStatus(GoodStatus());
    OtaClientV2::StatusResponse sub2;
    *sub2.add_ecu_v2() = Entry("sub2", OtaClientV2::SUCCESS);
    scripts_["sub2"]->SetStatus(sub2);
    OtaClientV2::UpdateResponse sub1_update;
    *sub1_update.add_ecu() = UpdateAnswer("sub1", "");
    *sub1_update.add_ecu() = UpdateAnswer("sub1a", "");
    scripts_["sub1"]->SetUpdate(sub1_update);
    OtaClientV2::UpdateResponse sub2_update;
    *sub2_update.add_ecu() = UpdateAnswer("sub2", "from sub2");
    scripts_["sub2"]->SetUpdate(sub2_update);
    options_.self_ecu_id = "main";
    options_.children = {{"sub1", "127.0.0.2", 50051}, {"sub2", "127.0.0.3", 50051}};
    options_.poll_interval_active = std::chrono::hours(1);
    options_.poll_interval_idle = std::chrono::hours(1);
    options_.drop_after = std::chrono::hours(1);
    options_.forward_timeout = milliseconds(5000);
  }
  void TearDown() override {
    if (tree_) tree_->Stop();
  }

  // Starts the tree; returns once both children's first answers were taken in.
  void StartTree() {
    std::map<std::string, int> before;
    for (const auto& [id, script] : scripts_) before[id] = script->answers();
    tree_ = std::make_unique<EcuTree>(options_, InlineTransports(scripts_));
    tree_->Start(nullptr);
    for (const auto& [id, script] : scripts_) ASSERT_TRUE(script->WaitAnswers(before[id])) << id;
  }
  // Polls every child once more and waits until `child`'s new answer was taken in.
  void Poll(const std::string& child) {
    const int before = scripts_[child]->answers();
    tree_->PollNow();
    ASSERT_TRUE(scripts_[child]->WaitAnswers(before)) << child;
  }

  // "id:STATUS:firmware_version" of every ecu_v2 entry; "id:result[:STATUS]" of the v1 view.
  Strings V2() const {
    OtaClientV2::StatusResponse response;
    tree_->AppendChildrenStatus(&response);
    Strings out;
    for (const auto& e : response.ecu_v2()) {
      out.push_back(e.ecu_id() + ":" + OtaClientV2::StatusOta_Name(e.ota_status()) + ":" +
                    e.firmware_version());
    }
    return out;
  }
  Strings V1() const {
    OtaClientV2::StatusResponse response;
    tree_->AppendChildrenStatus(&response);
    Strings out;
    for (const auto& e : response.ecu()) {
      out.push_back(e.ecu_id() + ":" + std::to_string(e.result()) +
                    (e.has_status() ? ":" + OtaClientV2::StatusOta_Name(e.status().status()) : ""));
    }
    return out;
  }
  Strings UpdateAnswers(const Strings& ids) {
    OtaClientV2::UpdateRequest request;
    request.set_request_id("r1");
    for (const auto& id : ids) request.add_ecu()->set_ecu_id(id);
    const OtaClientV2::UpdateResponse response = tree_->Update(request, [](auto*) {});
    Strings out;
    for (const auto& e : response.ecu()) {
      out.push_back(e.ecu_id() + ":" + std::to_string(e.result()) + ":" + e.message());
    }
    return out;
  }

  InlineScripts scripts_;
  EcuTreeOptions options_;
  std::unique_ptr<EcuTree> tree_;
};

TEST_F(ChildAnswerTreeTest, RefusedStatusAnswerIsNotMergedAndTheChildCountsAsNotHeard) {
  for (const StatusCase& c : BadStatusAnswers()) {
    SCOPED_TRACE(c.name);
    OtaClientV2::StatusResponse bad = GoodStatus();
    c.edit(bad);
    scripts_["sub1"]->SetStatus(bad);
    StartTree();
    EXPECT_EQ(V2(), (Strings{"sub2:SUCCESS:v1"}));
    EXPECT_EQ(V1(), (Strings{"sub2:0:SUCCESS", "sub1:1"}));
    // Nothing of it widened where requests go either: sub1a is unknown, and sub1 (never heard
    // properly) still gets what is addressed to it.
    EXPECT_EQ(UpdateAnswers({"sub1"}), (Strings{"sub1:0:"}));
    tree_->Stop();
    tree_.reset();
    scripts_["sub1"]->SetStatus(GoodStatus());
  }
}

TEST_F(ChildAnswerTreeTest, ARefusedAnswerAfterAGoodOneLeavesTheCacheAsItWas) {
  StartTree();
  EXPECT_EQ(V2(), (Strings{"sub1:SUCCESS:v1", "sub1a:SUCCESS:v1", "sub2:SUCCESS:v1"}));
  OtaClientV2::StatusResponse bad = GoodStatus();
  bad.mutable_ecu_v2(0)->set_ota_status(OtaClientV2::FAILURE);
  bad.mutable_ecu_v2(0)->set_firmware_version("v2");
  bad.mutable_ecu_v2(1)->set_failure_reason(std::string(40000, 'r'));
  *bad.add_ecu_v2() = Entry("sub1b", OtaClientV2::UPDATING);
  scripts_["sub1"]->SetStatus(bad);
  Poll("sub1");
  // The entries of the last good answer, until the drop rule removes them; nothing of the new one.
  EXPECT_EQ(V2(), (Strings{"sub1:SUCCESS:v1", "sub1a:SUCCESS:v1", "sub2:SUCCESS:v1"}));
  // A good answer again is taken as usual.
  bad.mutable_ecu_v2(1)->set_failure_reason("");
  scripts_["sub1"]->SetStatus(bad);
  Poll("sub1");
  EXPECT_EQ(V2(), (Strings{"sub1:FAILURE:v2", "sub1a:SUCCESS:v1", "sub1b:UPDATING:v1",
                           "sub2:SUCCESS:v1"}));
}

// Today's rule kept (the first child to report an id keeps it; this ECU's own id is never taken
// from a child) and one added: a direct child's id is only ever taken from that child, so a
// child answering first cannot shadow its sibling, in Status or in where requests go.
TEST_F(ChildAnswerTreeTest, AChildCannotSpeakForThisEcuOrItsSiblings) {
  OtaClientV2::StatusResponse liar = GoodStatus();
  *liar.add_ecu_v2() = Entry("sub2", OtaClientV2::FAILURE);
  *liar.add_ecu_v2() = Entry("main", OtaClientV2::FAILURE);
  liar.add_available_ecu_ids("sub2");
  liar.add_available_ecu_ids("main");
  liar.add_available_ecu_ids("sub1b");  // below sub1, not reported yet: forwarded to sub1
  scripts_["sub1"]->SetStatus(liar);
  OtaClientV2::UpdateResponse hijack;
  *hijack.add_ecu() = UpdateAnswer("sub2", "hijacked by sub1");
  *hijack.add_ecu() = UpdateAnswer("sub1b", "from sub1");
  scripts_["sub1"]->SetUpdate(hijack);
  StartTree();  // sub1 is polled (and answers) before sub2
  EXPECT_EQ(V2(), (Strings{"sub1:SUCCESS:v1", "sub1a:SUCCESS:v1", "sub2:SUCCESS:v1"}));
  EXPECT_EQ(UpdateAnswers({"sub2"}), (Strings{"sub2:0:from sub2"}));
  EXPECT_EQ(scripts_["sub1"]->updates().size(), 0u);
  EXPECT_EQ(UpdateAnswers({"sub1b"}), (Strings{"sub1b:0:from sub1"}));
  EXPECT_EQ(scripts_["sub2"]->updates().size(), 1u);
}

TEST_F(ChildAnswerTreeTest, RefusedUpdateAndAbortAnswersAreThatChildsFailureWithTheReason) {
  StartTree();
  OtaClientV2::UpdateResponse bad;
  *bad.add_ecu() = UpdateAnswer("sub1", std::string(40000, 'm'));
  *bad.add_ecu() = UpdateAnswer("sub1a", "");
  scripts_["sub1"]->SetUpdate(bad);
  const std::string why =
      "secondary sub1 (127.0.0.2:50051) answered Update with an invalid answer: ecu[0].message "
      "is 40000 bytes; at most 32768 are accepted";
  EXPECT_EQ(UpdateAnswers({"sub1", "sub2", "sub1a"}),
            (Strings{"sub1:1:ECU sub1: " + why, "sub2:0:from sub2", "sub1a:1:ECU sub1a: " + why}));

  OtaClientV2::AbortResponse abort;
  abort.add_ecu()->set_ecu_id("sub1");
  abort.mutable_ecu(0)->set_message("\xff\xfe");
  scripts_["sub1"]->SetAbort(abort);
  OtaClientV2::AbortResponse sub2_abort;
  sub2_abort.add_ecu()->set_ecu_id("sub2");
  scripts_["sub2"]->SetAbort(sub2_abort);
  const OtaClientV2::AbortResponse aborted =
      tree_->Abort(OtaClientV2::AbortRequest(), [](auto*) {});
  ASSERT_EQ(aborted.ecu_size(), 2);
  EXPECT_EQ(aborted.ecu(0).ecu_id(), "sub1");
  EXPECT_EQ(aborted.ecu(0).result(), OtaClientV2::ABORT_FAILURE);
  EXPECT_EQ(aborted.ecu(0).message(),
            "secondary sub1 (127.0.0.2:50051) answered Abort with an invalid answer: "
            "ecu[0].message is not valid UTF-8");
  EXPECT_EQ(aborted.ecu(1).ecu_id(), "sub2");
  EXPECT_EQ(aborted.ecu(1).result(), OtaClientV2::ABORT_NO_FAILURE);
}

// A child that names new ECU ids in every answer: the tree keeps at most max_entries ids of it,
// forgetting those only its older answers named (without the cap they would stay, being fresh).
TEST_F(ChildAnswerTreeTest, AChildInventingEcuIdsCannotGrowWhatTheTreeKeeps) {
  options_.answer_limits.max_entries = 4;
  auto answer = [](const Strings& ids) {
    OtaClientV2::StatusResponse status;
    for (const auto& id : ids) *status.add_ecu_v2() = Entry(id, OtaClientV2::SUCCESS);
    return status;
  };
  scripts_["sub1"]->SetStatus(answer({"sub1", "a1", "a2"}));
  StartTree();
  EXPECT_EQ(V2(),
            (Strings{"sub1:SUCCESS:v1", "a1:SUCCESS:v1", "a2:SUCCESS:v1", "sub2:SUCCESS:v1"}));
  scripts_["sub1"]->SetStatus(answer({"sub1", "a3"}));
  Poll("sub1");  // 4 ids in all: kept (a1 and a2 stay until the drop rule removes them)
  EXPECT_EQ(V2(), (Strings{"sub1:SUCCESS:v1", "a3:SUCCESS:v1", "a1:SUCCESS:v1", "a2:SUCCESS:v1",
                           "sub2:SUCCESS:v1"}));
  scripts_["sub1"]->SetStatus(answer({"sub1", "b1", "b2"}));
  Poll("sub1");  // 6 ids: only this answer's are kept
  EXPECT_EQ(V2(),
            (Strings{"sub1:SUCCESS:v1", "b1:SUCCESS:v1", "b2:SUCCESS:v1", "sub2:SUCCESS:v1"}));
  EXPECT_EQ(UpdateAnswers({"a1"}),
            (Strings{"a1:1:unknown ECU id \"a1\": neither main nor any ECU reported by its "
                     "secondaries"}));
}

}  // namespace
}  // namespace ota::ecu
