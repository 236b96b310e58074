// Pure rules of the multi-ECU fan-out (no I/O): which direct children a request is forwarded
// to, and how the children's per-ECU answers are merged with this ECU's own.
//
// Forwarding rule (Update and Rollback; Abort has upstream's own, see MergeAbortAnswers): the
// WHOLE request (same request_id) goes to
// every direct child C for which the request names
//   - C itself, or
//   - an ECU of C's known subtree: the ids in C's last Status answer (its ecu_v2 and v1 entries
//     and its available_ecu_ids), or
//   - an id that is in no known subtree at all ("unplaced": e.g. a grandchild that was down when
//     its parent was last polled), while C's subtree is not known for sure (C never answered a
//     Status yet) — so a request is never lost just because the poller has not run yet.
// A child that receives entries for ECUs outside its subtree answers them "unknown"; those
// answers are ignored by the merge.
//
// Merge rule, per requested ECU id X (answers keep the request's order, this ECU first):
//   - X is this ECU: the local answer.
//   - X is C or in C's known subtree: C's answer for X; C failed (timeout, unreachable, gRPC
//     error, an answer refused by child_answer.h) or its answer lacks X → RECOVERABLE (Abort:
//     ABORT_FAILURE) with a message naming C, its address and the error.
//   - X unplaced: the first child answer for X that is not an "unknown ECU" answer, else
//     RECOVERABLE "unknown ECU id".
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "grpcpp/support/status.h"
#include "proto/otaclient_v2.pb.h"

namespace ota::ecu {

// Every "unknown ECU id" answer starts with this (so a parent can tell it from a real answer).
inline constexpr char kUnknownEcuPrefix[] = "unknown ECU id";

// What this ECU knows about one direct child when forwarding.
struct ChildView {
  std::string ecu_id;
  std::string target;  // "ip:port", for messages
  // Ids reported by the child's last Status answer (its own id included); nullopt = never heard.
  std::optional<std::set<std::string>> subtree;
};

// Indices into `children` of the children the request (named ids `requested`) is forwarded to.
std::vector<size_t> ForwardTargets(const std::string& self_id,
                                   const std::vector<ChildView>& children,
                                   const std::vector<std::string>& requested);

// The outcome of one forwarded call.
template <typename Response>
struct ChildResult {
  bool answered = false;  // false: no callback by the deadline (treated as DEADLINE_EXCEEDED)
  grpc::Status status;
  Response response;
  // Non-empty: the child answered, but its answer broke a limit (child_answer.h) and was
  // dropped; why. The child then failed the call like one that did not answer.
  std::string refused;

  bool ok() const { return answered && status.ok() && refused.empty(); }
};

// "secondary C (ip:port) did not answer <rpc> within N ms" / "...: UNAVAILABLE: <details>".
std::string ChildErrorMessage(const ChildView& child, const std::string& rpc, bool answered,
                              const grpc::Status& status, long timeout_ms);

// Why a call that is not ok() failed: ChildErrorMessage, or for a refused answer
// "secondary C (ip:port) answered <rpc> with an invalid answer: <reason>".
std::string ChildFailureMessage(const ChildView& child, const std::string& rpc, bool answered,
                                const grpc::Status& status, const std::string& refused,
                                long timeout_ms);
template <typename Response>
std::string ChildFailureMessage(const ChildView& child, const std::string& rpc,
                                const ChildResult<Response>& result, long timeout_ms) {
  return ChildFailureMessage(child, rpc, result.answered, result.status, result.refused,
                             timeout_ms);
}

// Merges per-ECU answers (UpdateResponseEcu, AbortResponseEcu or RollbackResponseEcu).
// `local` is this ECU's own answers (already in the response order the caller wants for its own
// entries); `forwarded` lists (child index, result) for every forwarded child. Appends one
// answer per requested id other than self_id, in request order, without duplicates.
template <typename Entry, typename Response>
void MergeChildAnswers(const std::string& self_id, const std::vector<ChildView>& children,
                       const std::vector<std::string>& requested,
                       const std::vector<std::pair<size_t, ChildResult<Response>>>& forwarded,
                       const std::string& rpc, long timeout_ms, int failure_result,
                       google::protobuf::RepeatedPtrField<Entry>* out);

// Abort's rule is the Python client's, not the one above: the request goes to EVERY direct
// child whatever its list names (each child aborts itself and forwards to all of its own), and
// the answer is each child's whole AbortResponse, in `forwarded` order, appended to `out`. A
// child that did not answer gets one ABORT_FAILURE entry under its own id: "ECU <id> does not
// support the abort endpoint (UNIMPLEMENTED)" for a child without Abort, else the
// ChildErrorMessage. (This ECU's own entry is the caller's to append.)
void MergeAbortAnswers(
    const std::vector<ChildView>& children,
    const std::vector<std::pair<size_t, ChildResult<OtaClientV2::AbortResponse>>>& forwarded,
    long timeout_ms, google::protobuf::RepeatedPtrField<OtaClientV2::AbortResponseEcu>* out);

}  // namespace ota::ecu
