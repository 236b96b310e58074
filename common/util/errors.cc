#include "common/util/errors.h"

#include <cerrno>
#include <cstring>

#include "absl/strings/cord.h"
#include "absl/strings/string_view.h"
#include "common/util/strings.h"

namespace ota {
namespace {

// The payload that marks a local failure.
constexpr char kLocalFailurePayload[] = "ota/local-failure";

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

}  // namespace ota
