#include "common/util/errors.h"

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/string_view.h"
#include "common/util/strings.h"

namespace ota {
namespace {

// The payload that marks a local failure.
constexpr char kLocalFailurePayload[] = "ota/local-failure";
// The payload carrying the E-code an error must be reported with (WithOtaErrorCode).
constexpr char kErrorCodePayload[] = "ota/error-code";

struct CodeInfo {
  OtaErrorCode code;
  std::string_view description;
};

constexpr std::string_view kNetworkDescription =
    "network unstable, please check the network connection";
constexpr std::string_view kRecoverableDescription =
    "recoverable OTA error(unrelated to network) detected, please retry after reboot device or "
    "restart otaclient";
#define OTA_UNRECOVERABLE_DESCRIPTION "unrecoverable OTA error, please contact technical support"

// Upstream's descriptions, word for word (typos included: fleets compare them).
constexpr CodeInfo kCodes[] = {
    {OtaErrorCode::kNetwork, kNetworkDescription},
    {OtaErrorCode::kOtaMetaDownloadFailed,
     "failed to download OTA meta due to network unstable, please check the network "
     "connection"},
    {OtaErrorCode::kRecoverable, kRecoverableDescription},
    {OtaErrorCode::kInvalidStatusForRollback, "previous OTA is not succeeded, reject OTA rollback"},
    {OtaErrorCode::kOtaImageInvalid, "failed to complete OTA as OTA image is broken"},
    {OtaErrorCode::kUpdateRequestCookieInvalid, "failed to complete OTA as cookie is invalid"},
    {OtaErrorCode::kUnrecoverable, OTA_UNRECOVERABLE_DESCRIPTION},
    {OtaErrorCode::kBootControlPlatformUnsupported,
     OTA_UNRECOVERABLE_DESCRIPTION ": bootloader for this ECU is not supported"},
    {OtaErrorCode::kBootControlStartupFailed,
     OTA_UNRECOVERABLE_DESCRIPTION ": boot controller startup failed"},
    {OtaErrorCode::kBootControlPreUpdateFailed,
     OTA_UNRECOVERABLE_DESCRIPTION ": boot_control pre_update process failed"},
    {OtaErrorCode::kBootControlPostUpdateFailed,
     OTA_UNRECOVERABLE_DESCRIPTION ": boot_control post_update process failed"},
    {OtaErrorCode::kBootControlPostRollbackFailed,
     OTA_UNRECOVERABLE_DESCRIPTION ": boot_control post_rollback process failed"},
    {OtaErrorCode::kStandbySlotInsufficientSpace,
     OTA_UNRECOVERABLE_DESCRIPTION ": insufficient space at standby slot"},
    {OtaErrorCode::kMetadataCertVerificationFailed,
     OTA_UNRECOVERABLE_DESCRIPTION ": certificate verification failed for OTA metadata.jwt"},
    {OtaErrorCode::kUpdateDeltaGenerationFailed,
     OTA_UNRECOVERABLE_DESCRIPTION ": failed to calculate and/or prepare update delta"},
    {OtaErrorCode::kApplyOtaUpdateFailed,
     OTA_UNRECOVERABLE_DESCRIPTION ": failed to apply OTA update to standby slot"},
};
#undef OTA_UNRECOVERABLE_DESCRIPTION

std::optional<OtaErrorCode> MarkedCode(const absl::Status& status) {
  const auto payload = status.GetPayload(kErrorCodePayload);
  if (!payload.has_value()) return std::nullopt;
  const std::string text(*payload);
  for (const CodeInfo& info : kCodes) {
    if (text == std::to_string(static_cast<int>(info.code))) return info.code;
  }
  return std::nullopt;
}

// The code of the stage's own step failing (upstream wraps whatever the step raised in it).
OtaErrorCode StageCode(OtaStage stage) {
  switch (stage) {
    case OtaStage::kMetadata:
      return OtaErrorCode::kOtaMetaDownloadFailed;
    case OtaStage::kPrepareStandby:
      return OtaErrorCode::kBootControlPreUpdateFailed;
    case OtaStage::kDelta:
      return OtaErrorCode::kUpdateDeltaGenerationFailed;
    case OtaStage::kDownload:
      return OtaErrorCode::kNetwork;
    case OtaStage::kApply:
      return OtaErrorCode::kApplyOtaUpdateFailed;
    case OtaStage::kCommitSwitch:
      return OtaErrorCode::kBootControlPostUpdateFailed;
    case OtaStage::kBootStartup:
      return OtaErrorCode::kBootControlStartupFailed;
    case OtaStage::kRollbackCheck:
      return OtaErrorCode::kInvalidStatusForRollback;
    case OtaStage::kRollbackCommit:
      return OtaErrorCode::kBootControlPostRollbackFailed;
  }
  return OtaErrorCode::kUnrecoverable;
}

}  // namespace

absl::Status LocalFailure(absl::Status status) {
  if (!status.ok()) status.SetPayload(kLocalFailurePayload, absl::Cord("1"));
  return status;
}

bool IsLocalFailure(const absl::Status& status) {
  return !status.ok() && status.GetPayload(kLocalFailurePayload).has_value();
}

FailureKind FailureKindOf(const absl::Status& status) {
  if (IsLocalFailure(status)) return FailureKind::kUnrecoverable;
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return FailureKind::kNone;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kOutOfRange:
      return FailureKind::kRecoverable;
    default:
      return FailureKind::kUnrecoverable;
  }
}

std::string ErrnoText(int err) {
  const char* text = strerrordesc_np(err);  // glibc: a static string, no shared buffer
  return text != nullptr ? std::string(text) : StrCat("errno ", err);
}

absl::Status ErrnoStatus(int err, std::string_view what) {
  std::string msg = StrCat(what, ": ", ErrnoText(err));
  switch (err) {
    case ENOSPC:
    case EDQUOT:
      return LocalFailure(absl::ResourceExhaustedError(msg));
    case ENOENT:
      return LocalFailure(absl::NotFoundError(msg));
    default:
      return LocalFailure(absl::InternalError(msg));
  }
}

absl::Status WithContext(const absl::Status& status, std::string_view context) {
  if (status.ok()) return status;
  absl::Status out(status.code(), StrCat(context, ": ", status.message()));
  status.ForEachPayload([&out](absl::string_view type_url, const absl::Cord& payload) {
    out.SetPayload(type_url, payload);
  });
  return out;
}

std::string OtaErrorCodeName(OtaErrorCode code) {
  return StrCat("E", static_cast<int>(code));  // every code has three digits
}

std::string_view OtaErrorDescription(OtaErrorCode code) {
  for (const CodeInfo& info : kCodes) {
    if (info.code == code) return info.description;
  }
  return "no description available for this error";
}

FailureKind FailureKindOfCode(OtaErrorCode code) {
  return static_cast<int>(code) >= 300 ? FailureKind::kUnrecoverable : FailureKind::kRecoverable;
}

absl::Status WithOtaErrorCode(absl::Status status, OtaErrorCode code) {
  if (!status.ok() && !MarkedCode(status).has_value()) {
    status.SetPayload(kErrorCodePayload, absl::Cord(std::to_string(static_cast<int>(code))));
  }
  return status;
}

OtaErrorCode OtaErrorCodeOf(OtaStage stage, const absl::Status& status) {
  if (std::optional<OtaErrorCode> marked = MarkedCode(status)) return *marked;
  if (IsLocalFailure(status) && absl::IsResourceExhausted(status)) {
    return OtaErrorCode::kStandbySlotInsufficientSpace;
  }
  if (absl::IsCancelled(status)) return OtaErrorCode::kRecoverable;  // stopped: retry
  const bool local = IsLocalFailure(status);
  switch (stage) {
    case OtaStage::kMetadata:
      if (local) return OtaErrorCode::kUnrecoverable;
      if (absl::IsNotFound(status) || absl::IsInvalidArgument(status) || absl::IsDataLoss(status) ||
          absl::IsOutOfRange(status)) {
        return OtaErrorCode::kOtaImageInvalid;
      }
      return OtaErrorCode::kOtaMetaDownloadFailed;
    case OtaStage::kDownload:
      if (local) return OtaErrorCode::kApplyOtaUpdateFailed;  // writing into the standby
      if (absl::IsNotFound(status)) return OtaErrorCode::kOtaImageInvalid;
      return OtaErrorCode::kNetwork;
    case OtaStage::kBootStartup:
    case OtaStage::kPrepareStandby:
    case OtaStage::kDelta:
    case OtaStage::kApply:
    case OtaStage::kCommitSwitch:
    case OtaStage::kRollbackCheck:
    case OtaStage::kRollbackCommit:
      break;
  }
  return StageCode(stage);
}

OtaFailure DescribeOtaFailure(OtaStage stage, const absl::Status& status) {
  const OtaErrorCode code = OtaErrorCodeOf(stage, status);
  return {FailureKindOfCode(code),
          StrCat(OtaErrorCodeName(code), ": ", OtaErrorDescription(code), ": ", status.message())};
}

}  // namespace ota
