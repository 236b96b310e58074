#include "otaclient/service/request_limits.h"

#include <string>
#include <string_view>

#include "common/util/strings.h"

namespace ota::service {
namespace {

absl::Status CheckField(std::string_view rpc, std::string_view field, const std::string& value,
                        size_t limit) {
  if (value.size() <= limit) return absl::OkStatus();
  return absl::InvalidArgumentError(
      StrCat(rpc, ": ", field, " is ", value.size(), " bytes; at most ", limit, " are accepted"));
}

// The parts every request has: its id and a list of entries with an ecu_id.
template <typename Request>
absl::Status CheckCommon(std::string_view rpc, const Request& request,
                         const RequestLimits& limits) {
  if (static_cast<size_t>(request.ecu_size()) > limits.max_entries) {
    return absl::InvalidArgumentError(StrCat(rpc, ": ", request.ecu_size(),
                                             " ECU entries; at most ", limits.max_entries,
                                             " are accepted"));
  }
  if (absl::Status s = CheckField(rpc, "request_id", request.request_id(), limits.max_id_bytes);
      !s.ok()) {
    return s;
  }
  for (int i = 0; i < request.ecu_size(); ++i) {
    if (absl::Status s = CheckField(rpc, StrCat("ecu[", i, "].ecu_id"), request.ecu(i).ecu_id(),
                                    limits.max_id_bytes);
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckUpdateRequest(const OtaClientV2::UpdateRequest& request,
                                const RequestLimits& limits) {
  constexpr std::string_view kRpc = "UpdateRequest";
  if (absl::Status s = CheckCommon(kRpc, request, limits); !s.ok()) return s;
  for (int i = 0; i < request.ecu_size(); ++i) {
    const OtaClientV2::UpdateRequestEcu& entry = request.ecu(i);
    const std::string at = StrCat("ecu[", i, "].");
    const struct {
      std::string_view name;
      const std::string& value;
      size_t limit;
    } fields[] = {{"url", entry.url(), limits.max_url_bytes},
                  {"cookies", entry.cookies(), limits.max_cookies_bytes},
                  {"version", entry.version(), limits.max_field_bytes},
                  {"release_name", entry.release_name(), limits.max_field_bytes},
                  {"release_id", entry.release_id(), limits.max_field_bytes},
                  {"image_id", entry.image_id(), limits.max_field_bytes}};
    for (const auto& field : fields) {
      if (absl::Status s = CheckField(kRpc, StrCat(at, field.name), field.value, field.limit);
          !s.ok()) {
        return s;
      }
    }
  }
  return absl::OkStatus();
}

absl::Status CheckAbortRequest(const OtaClientV2::AbortRequest& request,
                               const RequestLimits& limits) {
  return CheckCommon("AbortRequest", request, limits);
}

absl::Status CheckRollbackRequest(const OtaClientV2::RollbackRequest& request,
                                  const RequestLimits& limits) {
  return CheckCommon("RollbackRequest", request, limits);
}

}  // namespace ota::service
