// Limits on what a secondary answers (issue 17). A child's StatusResponse, UpdateResponse,
// AbortResponse or RollbackResponse is checked whole before anything of it is used; a garbage or
// huge answer is that child's failure, never ours, and nothing of it is merged:
//   - a refused Status answer counts as no answer (logged with the reason when it changes): the
//     cache keeps what the child said before, which ages out by the drop rule (ecu_tree.h), so
//     the child is then listed as a v1 "not heard" placeholder;
//   - a refused Update/Rollback answer makes every requested ECU the child owns RECOVERABLE, a
//     refused Abort answer gives the child one ABORT_FAILURE entry, each with the message
//     "secondary C (ip:port) answered <rpc> with an invalid answer: <reason>" (fanout.h).
//
// The whole message is capped at 8 MiB by the transport (secondary_transport.cc). Within it:
//   Status answers (they go into this ECU's cache and its own Status answers):
//     - at most max_entries entries in ecu_v2, in the v1 ecu view and in available_ecu_ids, and
//       at most max_entries distinct ECU ids in all;
//     - every ECU id non-empty and valid as ecu_info wants one (config::CheckEcuId: at most 255
//       bytes of UTF-8, no control character, no leading or trailing space);
//     - no ECU id twice in ecu_v2, nor twice in the v1 view;
//   Update, Abort and Rollback answers (per-ECU entries that echo the ids of our request):
//     - at most max_entries entries; ecu_id at most max_id_bytes, as a request's (a request may
//       carry any id, and the child answers for each);
//   Every answer:
//     - versions, release_name, release_id, image_id and otaclient_version at most
//       max_field_bytes; failure_reason and message at most max_text_bytes; failure_traceback
//       at most max_traceback_bytes;
//     - every string valid UTF-8 (proto3 strings must be: one that is not would make this ECU's
//       own answers unparseable for its callers); in Status answers also without NUL bytes
//       (per-ECU answers echo our request's ids, and a request may carry any UTF-8 there).
// Messages name the field by its path and index, e.g. "ecu_v2[3].failure_reason is 40000 bytes;
// at most 32768 are accepted".
#pragma once

#include <cstddef>

#include "absl/status/status.h"
#include "proto/otaclient_v2.pb.h"

namespace ota::ecu {

struct ChildAnswerLimits {
  // ECU entries per answer and distinct ECU ids per Status answer; a whole vehicle has tens.
  // Also the most ECU ids this ECU keeps per child over time (ecu_tree.h).
  size_t max_entries = 256;
  size_t max_id_bytes = 256;                        // per-ECU answers: as a request's ecu_id
  size_t max_field_bytes = 1024;                    // versions, release fields, image_id
  size_t max_text_bytes = size_t{32} * 1024;        // failure_reason, message
  size_t max_traceback_bytes = size_t{128} * 1024;  // failure_traceback
};

absl::Status CheckChildAnswer(const OtaClientV2::StatusResponse& answer,
                              const ChildAnswerLimits& limits = {});
absl::Status CheckChildAnswer(const OtaClientV2::UpdateResponse& answer,
                              const ChildAnswerLimits& limits = {});
absl::Status CheckChildAnswer(const OtaClientV2::AbortResponse& answer,
                              const ChildAnswerLimits& limits = {});
absl::Status CheckChildAnswer(const OtaClientV2::RollbackResponse& answer,
                              const ChildAnswerLimits& limits = {});

}  // namespace ota::ecu
