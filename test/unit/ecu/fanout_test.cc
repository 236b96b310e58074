// Table tests of the pure forwarding and merge rules (otaclient/ecu/fanout.h).
#include "otaclient/ecu/fanout.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ota::ecu {
namespace {

std::vector<ChildView> Tree() {
  // main → sub1 (→ sub1a, sub1b), sub2 (never heard), sub3 (→ nothing below)
  return {{"sub1", "127.0.0.2:50051", std::set<std::string>{"sub1", "sub1a", "sub1b"}},
          {"sub2", "127.0.0.3:50051", std::nullopt},
          {"sub3", "127.0.0.4:50051", std::set<std::string>{"sub3"}}};
}

TEST(ForwardTargetsTest, Table) {
  struct Case {
    std::vector<std::string> requested;
    std::vector<size_t> want;
  };
  const Case cases[] = {
      {{}, {}},
      {{"main"}, {}},
      {{"main", "main"}, {}},
      {{"sub1"}, {0}},
      {{"sub1b"}, {0}},                  // grandchild: through its known parent only
      {{"sub2"}, {1}},                   // named directly
      {{"sub3", "sub1a"}, {0, 2}},       // request order does not matter, child order kept
      {{"ghost"}, {1}},                  // unplaced: only children whose subtree is unknown
      {{"sub3", "ghost"}, {1, 2}},       //
      {{""}, {1}},                       // an empty id is unplaced too
      {{"sub1", "sub1", "sub1a"}, {0}},  // duplicates forward once
  };
  for (const Case& c : cases) {
    std::string label;
    for (const auto& id : c.requested) label += id + ",";
    EXPECT_EQ(ForwardTargets("main", Tree(), c.requested), c.want) << label;
  }
  // Every subtree known: an unknown id goes nowhere.
  std::vector<ChildView> all_known = Tree();
  all_known[1].subtree = std::set<std::string>{"sub2"};
  EXPECT_TRUE(ForwardTargets("main", all_known, {"ghost"}).empty());
  EXPECT_TRUE(ForwardTargets("main", {}, {"ghost", "main"}).empty());
}

OtaClientV2::UpdateResponseEcu Answer(const std::string& id, OtaClientV2::FailureType result,
                                      const std::string& message = "") {
  OtaClientV2::UpdateResponseEcu entry;
  entry.set_ecu_id(id);
  entry.set_result(result);
  entry.set_message(message);
  return entry;
}

ChildResult<OtaClientV2::UpdateResponse> Ok(std::vector<OtaClientV2::UpdateResponseEcu> entries) {
  ChildResult<OtaClientV2::UpdateResponse> result;
  result.answered = true;
  for (auto& e : entries) *result.response.add_ecu() = e;
  return result;
}

using Merged = google::protobuf::RepeatedPtrField<OtaClientV2::UpdateResponseEcu>;

Merged Merge(const std::vector<std::string>& requested,
             const std::vector<std::pair<size_t, ChildResult<OtaClientV2::UpdateResponse>>>& fwd) {
  Merged out;
  MergeChildAnswers<OtaClientV2::UpdateResponseEcu, OtaClientV2::UpdateResponse>(
      "main", Tree(), requested, fwd, "Update", 5000, OtaClientV2::RECOVERABLE, &out);
  return out;
}

TEST(MergeChildAnswersTest, TakesEachEcuFromItsOwnerAndIgnoresOtherEntries) {
  // sub1 answers for its subtree and (as every ECU does for ids it does not know) "unknown" for
  // the rest; only its own subtree's answers are used.
  const auto merged =
      Merge({"main", "sub1", "sub1b", "sub3"},
            {{0, Ok({Answer("sub1", OtaClientV2::NO_FAILURE),
                     Answer("sub1b", OtaClientV2::RECOVERABLE, "busy"),
                     Answer("main", OtaClientV2::RECOVERABLE, "unknown ECU id \"main\""),
                     Answer("sub3", OtaClientV2::NO_FAILURE, "lie")})},
             {2, Ok({Answer("sub3", OtaClientV2::NO_FAILURE)})}});
  ASSERT_EQ(merged.size(), 3);  // main is the caller's own answer, not merged here
  EXPECT_EQ(merged[0].ecu_id(), "sub1");
  EXPECT_EQ(merged[0].result(), OtaClientV2::NO_FAILURE);
  EXPECT_EQ(merged[1].ecu_id(), "sub1b");
  EXPECT_EQ(merged[1].message(), "busy");
  EXPECT_EQ(merged[2].ecu_id(), "sub3");
  EXPECT_EQ(merged[2].message(), "");
}

TEST(MergeChildAnswersTest, FailedChildMakesItsWholeNamedSubtreeRecoverable) {
  ChildResult<OtaClientV2::UpdateResponse> timed_out;  // answered=false
  ChildResult<OtaClientV2::UpdateResponse> refused;
  refused.answered = true;
  refused.status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "connection refused");
  const auto merged = Merge({"sub1a", "sub1", "sub3"}, {{0, timed_out}, {2, refused}});
  ASSERT_EQ(merged.size(), 3);
  for (const auto& e : merged) EXPECT_EQ(e.result(), OtaClientV2::RECOVERABLE) << e.ecu_id();
  EXPECT_EQ(merged[0].message(),
            "ECU sub1a: secondary sub1 (127.0.0.2:50051) did not answer Update within 5000 ms");
  EXPECT_EQ(merged[1].message(),
            "ECU sub1: secondary sub1 (127.0.0.2:50051) did not answer Update within 5000 ms");
  EXPECT_EQ(merged[2].message(),
            "ECU sub3: secondary sub3 (127.0.0.4:50051) is unreachable: connection refused");
}

TEST(MergeChildAnswersTest, MissingEntryGarbageAndUnplacedIds) {
  ChildResult<OtaClientV2::UpdateResponse> garbage;
  garbage.answered = true;
  garbage.status = grpc::Status(grpc::StatusCode::INTERNAL, "failed to parse");
  const auto merged =
      Merge({"sub3", "ghost", "sub1b", "lost", "ghost"},
            {{0, Ok({Answer("sub1", OtaClientV2::NO_FAILURE)})},
             {1, Ok({Answer("ghost", OtaClientV2::NO_FAILURE),
                     Answer("lost", OtaClientV2::RECOVERABLE, "unknown ECU id \"lost\"")})},
             {2, garbage}});
  ASSERT_EQ(merged.size(), 4);  // the duplicate "ghost" is answered once
  EXPECT_EQ(merged[0].ecu_id(), "sub3");
  EXPECT_EQ(merged[0].message(),
            "ECU sub3: secondary sub3 (127.0.0.4:50051) failed Update: gRPC code 13: failed to "
            "parse");
  EXPECT_EQ(merged[1].ecu_id(), "ghost");  // found below sub2, whose subtree was unknown
  EXPECT_EQ(merged[1].result(), OtaClientV2::NO_FAILURE);
  EXPECT_EQ(merged[2].ecu_id(), "sub1b");
  EXPECT_EQ(merged[2].message(),
            "ECU sub1b: secondary sub1 (127.0.0.2:50051) answered Update without an entry for it");
  EXPECT_EQ(merged[3].ecu_id(), "lost");
  EXPECT_EQ(merged[3].result(), OtaClientV2::RECOVERABLE);
  EXPECT_TRUE(merged[3].message().starts_with(
      "unknown ECU id \"lost\": neither main nor any ECU reported by its secondaries"))
      << merged[3].message();
  EXPECT_NE(merged[3].message().find("secondary sub3"), std::string::npos) << merged[3].message();
}

// Issue 17: an answer refused by child_answer.h is its sender's failure, with the reason, for
// every ECU it owns and for unplaced ids; nothing of it is used (not even an entry it holds).
TEST(MergeChildAnswersTest, RefusedAnswerIsTheOwnersFailureWithTheReason) {
  ChildResult<OtaClientV2::UpdateResponse> sub1 =
      Ok({Answer("sub1", OtaClientV2::NO_FAILURE), Answer("sub1a", OtaClientV2::NO_FAILURE)});
  sub1.refused = "ecu[1].message is not valid UTF-8";
  ChildResult<OtaClientV2::UpdateResponse> sub2 = Ok({Answer("ghost", OtaClientV2::NO_FAILURE)});
  sub2.refused = "ecu: 300 entries; at most 256 are accepted";
  const auto merged = Merge({"sub1", "sub1a", "ghost"}, {{0, sub1}, {1, sub2}});
  ASSERT_EQ(merged.size(), 3);
  for (const auto& e : merged) EXPECT_EQ(e.result(), OtaClientV2::RECOVERABLE) << e.ecu_id();
  EXPECT_EQ(merged[0].message(),
            "ECU sub1: secondary sub1 (127.0.0.2:50051) answered Update with an invalid answer: "
            "ecu[1].message is not valid UTF-8");
  EXPECT_EQ(merged[1].message(),
            "ECU sub1a: secondary sub1 (127.0.0.2:50051) answered Update with an invalid answer: "
            "ecu[1].message is not valid UTF-8");
  EXPECT_EQ(merged[2].message(),
            "unknown ECU id \"ghost\": neither main nor any ECU reported by its secondaries "
            "(not heard: secondary sub1 (127.0.0.2:50051) answered Update with an invalid "
            "answer: ecu[1].message is not valid UTF-8; secondary sub2 (127.0.0.3:50051) "
            "answered Update with an invalid answer: ecu: 300 entries; at most 256 are "
            "accepted)");

  ChildResult<OtaClientV2::AbortResponse> aborted;
  aborted.answered = true;
  aborted.response.add_ecu()->set_ecu_id("sub3");
  aborted.refused = "ecu[0].message is 40000 bytes; at most 32768 are accepted";
  google::protobuf::RepeatedPtrField<OtaClientV2::AbortResponseEcu> out;
  MergeAbortAnswers(Tree(), {{2, aborted}}, 100, &out);
  ASSERT_EQ(out.size(), 1);
  EXPECT_EQ(out[0].ecu_id(), "sub3");
  EXPECT_EQ(out[0].result(), OtaClientV2::ABORT_FAILURE);
  EXPECT_EQ(
      out[0].message(),
      "secondary sub3 (127.0.0.4:50051) answered Abort with an invalid answer: ecu[0].message "
      "is 40000 bytes; at most 32768 are accepted");
}

// A child's gRPC error text is quoted in this ECU's own answers: at most 1 KiB of it, invalid
// UTF-8 replaced (else this ECU's answer would not parse at its caller).
TEST(MergeChildAnswersTest, AChildsErrorTextIsQuotedBoundedAndAsValidUtf8) {
  ChildResult<OtaClientV2::UpdateResponse> failed;
  failed.answered = true;
  failed.status = grpc::Status(grpc::StatusCode::INTERNAL, "bad \xff" + std::string(5000, 'e'));
  const auto merged = Merge({"sub3"}, {{2, failed}});
  ASSERT_EQ(merged.size(), 1);
  const std::string prefix =
      "ECU sub3: secondary sub3 (127.0.0.4:50051) failed Update: gRPC code 13: bad \xEF\xBF\xBD";
  ASSERT_TRUE(merged[0].message().starts_with(prefix)) << merged[0].message().substr(0, 100);
  // The quoted part ("bad " onwards) is 1 KiB exactly.
  EXPECT_EQ(merged[0].message().size(), prefix.size() - 7 + 1024);
  EXPECT_TRUE(merged[0].message().ends_with("eee...")) << merged[0].message();
}

TEST(MergeChildAnswersTest, AbortUsesAbortFailure) {
  google::protobuf::RepeatedPtrField<OtaClientV2::AbortResponseEcu> out;
  MergeChildAnswers<OtaClientV2::AbortResponseEcu, OtaClientV2::AbortResponse>(
      "main", Tree(), {"sub3"}, {{2, ChildResult<OtaClientV2::AbortResponse>{}}}, "Abort", 100,
      OtaClientV2::ABORT_FAILURE, &out);
  ASSERT_EQ(out.size(), 1);
  EXPECT_EQ(out[0].result(), OtaClientV2::ABORT_FAILURE);
  EXPECT_EQ(out[0].message(),
            "ECU sub3: secondary sub3 (127.0.0.4:50051) did not answer Abort within 100 ms");
}

// Abort's merge (upstream's rule): whole child answers in order; a failed child is one
// ABORT_FAILURE under its own id.
TEST(MergeAbortAnswersTest, WholeChildAnswersThenFailuresPerChild) {
  ChildResult<OtaClientV2::AbortResponse> sub1;
  sub1.answered = true;
  for (const char* id : {"sub1a", "sub1", "sub1b"}) {
    auto* e = sub1.response.add_ecu();
    e->set_ecu_id(id);
    e->set_result(OtaClientV2::ABORT_NO_FAILURE);
    e->set_message("Abort accepted, aborting update immediately");
  }
  ChildResult<OtaClientV2::AbortResponse> sub2;  // never answered
  ChildResult<OtaClientV2::AbortResponse> sub3;
  sub3.answered = true;
  sub3.status = grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "");
  google::protobuf::RepeatedPtrField<OtaClientV2::AbortResponseEcu> out;
  MergeAbortAnswers(Tree(), {{0, sub1}, {1, sub2}, {2, sub3}}, 100, &out);
  ASSERT_EQ(out.size(), 5);
  EXPECT_EQ(out[0].ecu_id(), "sub1a");
  EXPECT_EQ(out[1].ecu_id(), "sub1");
  EXPECT_EQ(out[2].ecu_id(), "sub1b");
  EXPECT_EQ(out[2].result(), OtaClientV2::ABORT_NO_FAILURE);
  EXPECT_EQ(out[3].ecu_id(), "sub2");
  EXPECT_EQ(out[3].result(), OtaClientV2::ABORT_FAILURE);
  EXPECT_EQ(out[3].message(),
            "secondary sub2 (127.0.0.3:50051) did not answer Abort within 100 ms");
  EXPECT_EQ(out[4].ecu_id(), "sub3");
  EXPECT_EQ(out[4].result(), OtaClientV2::ABORT_FAILURE);
  EXPECT_EQ(out[4].message(), "ECU sub3 does not support the abort endpoint (UNIMPLEMENTED)");

  // A child that fails otherwise: its error.
  ChildResult<OtaClientV2::AbortResponse> down;
  down.answered = true;
  down.status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "connection refused");
  out.Clear();
  MergeAbortAnswers(Tree(), {{2, down}}, 100, &out);
  ASSERT_EQ(out.size(), 1);
  EXPECT_EQ(out[0].message(),
            "secondary sub3 (127.0.0.4:50051) is unreachable: connection refused");
}

}  // namespace
}  // namespace ota::ecu
