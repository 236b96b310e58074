#include "otaclient/ecu/child_answer.h"

#include <set>
#include <string>
#include <string_view>

#include "common/config/ecu_info.h"
#include "common/util/errors.h"
#include "common/util/strings.h"
#include "common/util/utf8.h"

namespace ota::ecu {
namespace {

// A string field: at most `limit` bytes of UTF-8, without NUL bytes unless `nul_ok`.
absl::Status CheckText(std::string_view where, const std::string& value, size_t limit,
                       bool nul_ok) {
  if (value.size() > limit) {
    return absl::InvalidArgumentError(
        StrCat(where, " is ", value.size(), " bytes; at most ", limit, " are accepted"));
  }
  if (!IsValidUtf8(value)) return absl::InvalidArgumentError(StrCat(where, " is not valid UTF-8"));
  if (!nul_ok && value.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(StrCat(where, " contains a NUL byte"));
  }
  return absl::OkStatus();
}

absl::Status CheckCount(std::string_view field, int count, size_t limit) {
  if (static_cast<size_t>(count) <= limit) return absl::OkStatus();
  return absl::InvalidArgumentError(
      StrCat(field, ": ", count, " entries; at most ", limit, " are accepted"));
}

// An ECU id of a Status answer: this ECU keeps it and reports it up.
absl::Status CheckStatusId(std::string_view where, const std::string& id) {
  if (id.empty()) return absl::InvalidArgumentError(StrCat(where, " is empty"));
  if (absl::Status bad = config::CheckEcuId(id); !bad.ok()) {
    return absl::InvalidArgumentError(StrCat(where, ": ", bad.message()));
  }
  return absl::OkStatus();
}

absl::Status CheckV2Entry(const std::string& at, const OtaClientV2::StatusResponseEcuV2& entry,
                          const ChildAnswerLimits& limits) {
  OTA_RETURN_IF_ERROR(CheckStatusId(StrCat(at, "ecu_id"), entry.ecu_id()));
  const struct {
    std::string_view name;
    const std::string& value;
    size_t limit;
  } fields[] = {
      {"firmware_version", entry.firmware_version(), limits.max_field_bytes},
      {"otaclient_version", entry.otaclient_version(), limits.max_field_bytes},
      {"release_name", entry.release_name(), limits.max_field_bytes},
      {"release_id", entry.release_id(), limits.max_field_bytes},
      {"image_id", entry.image_id(), limits.max_field_bytes},
      {"failure_reason", entry.failure_reason(), limits.max_text_bytes},
      {"failure_traceback", entry.failure_traceback(), limits.max_traceback_bytes},
      {"update_status.update_firmware_version", entry.update_status().update_firmware_version(),
       limits.max_field_bytes},
  };
  for (const auto& field : fields) {
    OTA_RETURN_IF_ERROR(
        CheckText(StrCat(at, field.name), field.value, field.limit, /*nul_ok=*/false));
  }
  return absl::OkStatus();
}

absl::Status CheckV1Entry(const std::string& at, const OtaClientV2::StatusResponseEcu& entry,
                          const ChildAnswerLimits& limits) {
  OTA_RETURN_IF_ERROR(CheckStatusId(StrCat(at, "ecu_id"), entry.ecu_id()));
  OTA_RETURN_IF_ERROR(CheckText(StrCat(at, "status.version"), entry.status().version(),
                                limits.max_field_bytes, /*nul_ok=*/false));
  return CheckText(StrCat(at, "status.failure_reason"), entry.status().failure_reason(),
                   limits.max_text_bytes, /*nul_ok=*/false);
}

// Update, Abort and Rollback answers: {ecu_id, result, message} per ECU.
template <typename Response>
absl::Status CheckPerEcuAnswer(const Response& answer, const ChildAnswerLimits& limits) {
  OTA_RETURN_IF_ERROR(CheckCount("ecu", answer.ecu_size(), limits.max_entries));
  for (int i = 0; i < answer.ecu_size(); ++i) {
    const std::string at = StrCat("ecu[", i, "].");
    OTA_RETURN_IF_ERROR(CheckText(StrCat(at, "ecu_id"), answer.ecu(i).ecu_id(), limits.max_id_bytes,
                                  /*nul_ok=*/true));
    OTA_RETURN_IF_ERROR(CheckText(StrCat(at, "message"), answer.ecu(i).message(),
                                  limits.max_text_bytes, /*nul_ok=*/true));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckChildAnswer(const OtaClientV2::StatusResponse& answer,
                              const ChildAnswerLimits& limits) {
  OTA_RETURN_IF_ERROR(CheckCount("ecu_v2", answer.ecu_v2_size(), limits.max_entries));
  OTA_RETURN_IF_ERROR(CheckCount("ecu", answer.ecu_size(), limits.max_entries));
  OTA_RETURN_IF_ERROR(
      CheckCount("available_ecu_ids", answer.available_ecu_ids_size(), limits.max_entries));
  std::set<std::string_view> all;
  std::set<std::string_view> seen;
  for (int i = 0; i < answer.ecu_v2_size(); ++i) {
    const std::string at = StrCat("ecu_v2[", i, "].");
    const OtaClientV2::StatusResponseEcuV2& entry = answer.ecu_v2(i);
    OTA_RETURN_IF_ERROR(CheckV2Entry(at, entry, limits));
    if (!seen.insert(entry.ecu_id()).second) {
      return absl::InvalidArgumentError(
          StrCat(at, "ecu_id \"", entry.ecu_id(), "\" is listed twice in ecu_v2"));
    }
    all.insert(entry.ecu_id());
  }
  seen.clear();
  for (int i = 0; i < answer.ecu_size(); ++i) {
    const std::string at = StrCat("ecu[", i, "].");
    const OtaClientV2::StatusResponseEcu& entry = answer.ecu(i);
    OTA_RETURN_IF_ERROR(CheckV1Entry(at, entry, limits));
    if (!seen.insert(entry.ecu_id()).second) {
      return absl::InvalidArgumentError(
          StrCat(at, "ecu_id \"", entry.ecu_id(), "\" is listed twice in ecu"));
    }
    all.insert(entry.ecu_id());
  }
  for (int i = 0; i < answer.available_ecu_ids_size(); ++i) {
    OTA_RETURN_IF_ERROR(
        CheckStatusId(StrCat("available_ecu_ids[", i, "]"), answer.available_ecu_ids(i)));
    all.insert(answer.available_ecu_ids(i));
  }
  if (all.size() > limits.max_entries) {
    return absl::InvalidArgumentError(StrCat("the answer names ", all.size(),
                                             " distinct ECU ids; at most ", limits.max_entries,
                                             " are accepted"));
  }
  return absl::OkStatus();
}

absl::Status CheckChildAnswer(const OtaClientV2::UpdateResponse& answer,
                              const ChildAnswerLimits& limits) {
  return CheckPerEcuAnswer(answer, limits);
}

absl::Status CheckChildAnswer(const OtaClientV2::AbortResponse& answer,
                              const ChildAnswerLimits& limits) {
  return CheckPerEcuAnswer(answer, limits);
}

absl::Status CheckChildAnswer(const OtaClientV2::RollbackResponse& answer,
                              const ChildAnswerLimits& limits) {
  return CheckPerEcuAnswer(answer, limits);
}

}  // namespace ota::ecu
