#include "otaclient/ecu/fanout.h"

#include <algorithm>
#include <utility>

#include "common/util/strings.h"
#include "common/util/utf8.h"

namespace ota::ecu {
namespace {

// What of a child's gRPC error text is quoted in messages.
constexpr size_t kMaxChildErrorBytes = 1024;

bool Contains(const std::vector<std::string>& ids, const std::string& id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

bool Owns(const ChildView& child, const std::string& id) {
  return child.ecu_id == id || (child.subtree && child.subtree->contains(id));
}

// The child owning `id`, or nullopt when the id is in no known subtree.
std::optional<size_t> OwnerOf(const std::vector<ChildView>& children, const std::string& id) {
  for (size_t i = 0; i < children.size(); ++i) {
    if (Owns(children[i], id)) return i;
  }
  return std::nullopt;
}

template <typename Entry>
void SetFailure(Entry* entry, const std::string& id, int failure_result, std::string message) {
  entry->set_ecu_id(id);
  entry->set_result(static_cast<decltype(entry->result())>(failure_result));
  entry->set_message(std::move(message));
}

}  // namespace

std::vector<size_t> ForwardTargets(const std::string& self_id,
                                   const std::vector<ChildView>& children,
                                   const std::vector<std::string>& requested) {
  bool any_unplaced = false;
  std::vector<bool> forward(children.size(), false);
  for (const std::string& id : requested) {
    if (id == self_id) continue;
    bool placed = false;
    for (size_t i = 0; i < children.size(); ++i) {
      if (Owns(children[i], id)) {
        forward[i] = true;
        placed = true;
      }
    }
    any_unplaced = any_unplaced || !placed;
  }
  std::vector<size_t> targets;
  for (size_t i = 0; i < children.size(); ++i) {
    if (forward[i] || (any_unplaced && !children[i].subtree)) targets.push_back(i);
  }
  return targets;
}

std::string ChildErrorMessage(const ChildView& child, const std::string& rpc, bool answered,
                              const grpc::Status& status, long timeout_ms) {
  const std::string who = StrCat("secondary ", child.ecu_id, " (", child.target, ")");
  if (!answered || status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return StrCat(who, " did not answer ", rpc, " within ", timeout_ms, " ms");
  }
  // The child's error text goes into this ECU's own answers: bounded and valid UTF-8 (issue 17).
  const std::string details = ValidUtf8Prefix(status.error_message(), kMaxChildErrorBytes);
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    return StrCat(who, " is unreachable: ", details);
  }
  return StrCat(who, " failed ", rpc, ": gRPC code ", static_cast<int>(status.error_code()), ": ",
                details);
}

std::string ChildFailureMessage(const ChildView& child, const std::string& rpc, bool answered,
                                const grpc::Status& status, const std::string& refused,
                                long timeout_ms) {
  if (answered && status.ok() && !refused.empty()) {
    return StrCat("secondary ", child.ecu_id, " (", child.target, ") answered ", rpc,
                  " with an invalid answer: ", refused);
  }
  return ChildErrorMessage(child, rpc, answered, status, timeout_ms);
}

template <typename Entry, typename Response>
void MergeChildAnswers(const std::string& self_id, const std::vector<ChildView>& children,
                       const std::vector<std::string>& requested,
                       const std::vector<std::pair<size_t, ChildResult<Response>>>& forwarded,
                       const std::string& rpc, long timeout_ms, int failure_result,
                       google::protobuf::RepeatedPtrField<Entry>* out) {
  auto result_of = [&](size_t child) -> const ChildResult<Response>* {
    for (const auto& [index, result] : forwarded) {
      if (index == child) return &result;
    }
    return nullptr;
  };
  auto entry_in = [](const Response& response, const std::string& id) -> const Entry* {
    for (const Entry& entry : response.ecu()) {
      if (entry.ecu_id() == id) return &entry;
    }
    return nullptr;
  };

  std::vector<std::string> done;
  for (const std::string& id : requested) {
    if (id == self_id || Contains(done, id)) continue;
    done.push_back(id);
    Entry* answer = out->Add();
    if (const std::optional<size_t> owner = OwnerOf(children, id)) {
      const ChildView& child = children[*owner];
      const ChildResult<Response>* result = result_of(*owner);
      if (result == nullptr) {  // cannot happen when `forwarded` follows ForwardTargets
        SetFailure(answer, id, failure_result,
                   StrCat("ECU ", id, ": ", rpc, " was not forwarded to secondary ", child.ecu_id));
      } else if (!result->ok()) {
        SetFailure(answer, id, failure_result,
                   StrCat("ECU ", id, ": ", ChildFailureMessage(child, rpc, *result, timeout_ms)));
      } else if (const Entry* entry = entry_in(result->response, id)) {
        *answer = *entry;
      } else {
        SetFailure(answer, id, failure_result,
                   StrCat("ECU ", id, ": secondary ", child.ecu_id, " (", child.target,
                          ") answered ", rpc, " without an entry for it"));
      }
      continue;
    }
    // Unplaced: take a real answer from whichever child has one.
    const Entry* found = nullptr;
    std::string unreachable;
    for (const auto& [index, result] : forwarded) {
      if (!result.ok()) {
        StrAppend(&unreachable, unreachable.empty() ? "" : "; ",
                  ChildFailureMessage(children[index], rpc, result, timeout_ms));
        continue;
      }
      const Entry* entry = entry_in(result.response, id);
      if (entry != nullptr && !entry->message().starts_with(kUnknownEcuPrefix)) {
        found = entry;
        break;
      }
    }
    if (found != nullptr) {
      *answer = *found;
      continue;
    }
    std::string message = StrCat(kUnknownEcuPrefix, " \"", id, "\": neither ", self_id,
                                 " nor any ECU reported by its secondaries");
    if (!unreachable.empty()) StrAppend(&message, " (not heard: ", unreachable, ")");
    SetFailure(answer, id, failure_result, std::move(message));
  }
}

void MergeAbortAnswers(
    const std::vector<ChildView>& children,
    const std::vector<std::pair<size_t, ChildResult<OtaClientV2::AbortResponse>>>& forwarded,
    long timeout_ms, google::protobuf::RepeatedPtrField<OtaClientV2::AbortResponseEcu>* out) {
  for (const auto& [index, result] : forwarded) {
    const ChildView& child = children[index];
    if (result.ok()) {
      for (const OtaClientV2::AbortResponseEcu& entry : result.response.ecu()) *out->Add() = entry;
      continue;
    }
    std::string message =
        result.answered && result.status.error_code() == grpc::StatusCode::UNIMPLEMENTED
            ? StrCat("ECU ", child.ecu_id, " does not support the abort endpoint (UNIMPLEMENTED)")
            : ChildFailureMessage(child, "Abort", result, timeout_ms);
    SetFailure(out->Add(), child.ecu_id, OtaClientV2::ABORT_FAILURE, std::move(message));
  }
}

template void MergeChildAnswers(
    const std::string&, const std::vector<ChildView>&, const std::vector<std::string>&,
    const std::vector<std::pair<size_t, ChildResult<OtaClientV2::UpdateResponse>>>&,
    const std::string&, long, int,
    google::protobuf::RepeatedPtrField<OtaClientV2::UpdateResponseEcu>*);
template void MergeChildAnswers(
    const std::string&, const std::vector<ChildView>&, const std::vector<std::string>&,
    const std::vector<std::pair<size_t, ChildResult<OtaClientV2::AbortResponse>>>&,
    const std::string&, long, int,
    google::protobuf::RepeatedPtrField<OtaClientV2::AbortResponseEcu>*);
template void MergeChildAnswers(
    const std::string&, const std::vector<ChildView>&, const std::vector<std::string>&,
    const std::vector<std::pair<size_t, ChildResult<OtaClientV2::RollbackResponse>>>&,
    const std::string&, long, int,
    google::protobuf::RepeatedPtrField<OtaClientV2::RollbackResponseEcu>*);

}  // namespace ota::ecu
