// Size limits on what the service accepts, checked before a request reaches the engine or is
// forwarded: requests are small (a URL, a version, a few ids per ECU), so anything far larger is
// garbage or hostile and is refused whole with INVALID_ARGUMENT naming the field, its size and
// the limit, instead of being copied down the ECU tree and held in memory.
#pragma once

#include <cstddef>

#include "absl/status/status.h"
#include "proto/otaclient_v2.pb.h"

namespace ota::service {

// Whole gRPC request messages received by the server (a secondary's answers have their own
// limit, otaclient/ecu/secondary_transport.cc).
inline constexpr int kMaxRequestMessageBytes = 1 << 20;

struct RequestLimits {
  size_t max_entries = 256;                 // ECU entries per request (a vehicle has tens)
  size_t max_url_bytes = size_t{8} * 1024;  // as common web servers' request-line limits
  size_t max_cookies_bytes = size_t{64} * 1024;
  size_t max_id_bytes = 256;      // ecu_id, request_id
  size_t max_field_bytes = 1024;  // version, release_name, release_id, image_id
};

absl::Status CheckUpdateRequest(const OtaClientV2::UpdateRequest& request,
                                const RequestLimits& limits = {});
absl::Status CheckAbortRequest(const OtaClientV2::AbortRequest& request,
                               const RequestLimits& limits = {});
absl::Status CheckRollbackRequest(const OtaClientV2::RollbackRequest& request,
                                  const RequestLimits& limits = {});

}  // namespace ota::service
