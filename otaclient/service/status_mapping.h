// Turns the update engine's StatusSnapshot into the wire's per-ECU status views: the v2
// StatusResponseEcuV2 and the deprecated v1 StatusResponseEcu that older tools still read.
// Pure functions, no I/O: Status must never wait on anything.
#pragma once

#include <cstdint>
#include <string_view>

#include "google/protobuf/duration.pb.h"
#include "otaclient/update/status_snapshot.h"
#include "proto/otaclient_v2.pb.h"

namespace ota::service {

void MillisToDuration(uint64_t millis, google::protobuf::Duration* out);

// v2 view. update_status is set only while UPDATING; failure_type and failure_reason are set on
// every entry: the snapshot's on FAILURE and ROLLBACK_FAILURE, NO_FAILURE and "" otherwise.
OtaClientV2::StatusResponseEcuV2 ToEcuStatusV2(const update::StatusSnapshot& snapshot,
                                               std::string_view ecu_id,
                                               std::string_view otaclient_version);

// v1 view: result NO_FAILURE (the Status call itself worked), status{...} with all 16
// StatusProgress fields. The progress is always filled, also after the update ended, as the
// original daemon did.
OtaClientV2::StatusResponseEcu ToEcuStatusV1(const update::StatusSnapshot& snapshot,
                                             std::string_view ecu_id);

}  // namespace ota::service
