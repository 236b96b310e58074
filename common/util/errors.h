// Error kinds. Expected failures travel as absl::Status values; the code says what kind of
// failure it is, the message says what and where. This is the one place that maps a status onto
// the wire's FailureType.
//
// Local failures come first: a status made by ErrnoStatus (a file, directory or device of this
// ECU) or marked with LocalFailure (a local program that hung) is UNRECOVERABLE whatever its
// code — kNotFound from a local ENOENT included. The mark travels with the status through
// WithContext. Otherwise the code decides:
//
//   kUnavailable        network / server unreachable / HTTP 5xx after retries   → RECOVERABLE
//   kPermissionDenied   HTTP 401/403, certificate chain or signature rejected    → RECOVERABLE
//   kDataLoss           content does not match its signed hash after retries     → RECOVERABLE
//   kInvalidArgument    bad request (URL, cookies) or malformed image metadata   → RECOVERABLE
//   kFailedPrecondition busy, or an operation not allowed in the current state    → RECOVERABLE
//   kCancelled          aborted by request                                        → RECOVERABLE
//   kNotFound           HTTP 404/410 / missing file in the image                  → RECOVERABLE
//   kDeadlineExceeded   remote timeout                                             → RECOVERABLE
//   kResourceExhausted  disk full                                                 → UNRECOVERABLE
//   kInternal, others   local I/O failures, broken slot, bugs                     → UNRECOVERABLE
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace ota {

enum class FailureKind { kNone = 0, kRecoverable = 1, kUnrecoverable = 2 };

// Maps a status onto the wire's FailureType (numeric values are the proto's).
FailureKind FailureKindOf(const absl::Status& status);

// errno → status with `what` ("open /x/y") prefixed, marked as a local failure; the code stays
// telling for callers (ENOENT → kNotFound, ENOSPC/EDQUOT → kResourceExhausted, else kInternal).
absl::Status ErrnoStatus(int err, std::string_view what);
// The text of errno value `err` ("No such file or directory"); unlike strerror, thread-safe.
std::string ErrnoText(int err);

// Marks `status` as a failure of this ECU (UNRECOVERABLE); OK stays OK.
absl::Status LocalFailure(absl::Status status);
bool IsLocalFailure(const absl::Status& status);

// Prefixes context to a status message, keeping its code and marks: "loading metadata: <msg>".
absl::Status WithContext(const absl::Status& status, std::string_view context);

// --- The failure of an OTA operation as Status reports it ---------------------------------
//
// Fleets parse failure_reason's error code: the Python otaclient reports
// "E<3 digits>: <fixed description>", and its FailureType follows from the code (1xx network
// and 2xx: RECOVERABLE, 3xx: UNRECOVERABLE). Ours is "E<code>: <the same description>: <what
// and where>": the same prefix, then the detail the Python client only logs.
//
// The code depends on the stage the operation failed in and on the error, like upstream's:
//   stage \ error        marked  ENOSPC  local(errno)  cancelled  HTTP 404  content  network
//   metadata              mark    E307    E300          E200       E203      E203     E101
//   prepare standby       mark    E307    E303          E200       E303      E303     E303
//   delta                 mark    E307    E312          E200       E312      E312     E312
//   download              mark    E307    E313          E200       E203      E100     E100
//   apply, persistents,
//   post-update           mark    E307    E313          E200       E313      E313     E313
//   commit switch         mark    E307    E304          E200       E304      E304     E304
//   boot startup          mark    E302 (E301 when marked: no backend for this platform)
//   rollback check        E202 (the other slot holds no image to go back to)
//   rollback commit       E306
// "marked": WithOtaErrorCode set the code where the error arose: HTTP 401/403 is E204 (the
// server refused the request's cookies), an image whose certificate chain, signature or CA
// store fails is E309. "content": malformed or not matching its signed hash (kInvalidArgument,
// kDataLoss). "network": any other remote error (kUnavailable, kDeadlineExceeded, TLS failures).
// A local failure found in the metadata stage (a broken CA dir is marked E309) is E300.

// The codes of upstream's OTAErrorCode (src/otaclient/errors.py) that this client reports.
enum class OtaErrorCode : int {
  kNetwork = 100,
  kOtaMetaDownloadFailed = 101,
  kRecoverable = 200,
  kInvalidStatusForRollback = 202,
  kOtaImageInvalid = 203,
  kUpdateRequestCookieInvalid = 204,
  kUnrecoverable = 300,
  kBootControlPlatformUnsupported = 301,
  kBootControlStartupFailed = 302,
  kBootControlPreUpdateFailed = 303,
  kBootControlPostUpdateFailed = 304,
  kBootControlPostRollbackFailed = 306,
  kStandbySlotInsufficientSpace = 307,
  kMetadataCertVerificationFailed = 309,
  kUpdateDeltaGenerationFailed = 312,
  kApplyOtaUpdateFailed = 313,
};

// "E203"
std::string OtaErrorCodeName(OtaErrorCode code);
// Upstream's fixed description of the code, word for word (fleets match on it).
std::string_view OtaErrorDescription(OtaErrorCode code);
// RECOVERABLE for 1xx and 2xx, UNRECOVERABLE for 3xx.
FailureKind FailureKindOfCode(OtaErrorCode code);

enum class OtaStage {
  kMetadata,
  kPrepareStandby,
  kDelta,
  kDownload,
  kApply,  // applying, persistent files, post-update (resources removed, sync)
  kCommitSwitch,
  kBootStartup,
  kRollbackCheck,
  kRollbackCommit,
};

// Marks `status` with the code it must be reported with whatever stage it surfaces in (OK
// stays OK; an existing mark is kept: the first one set, nearest the cause, wins).
absl::Status WithOtaErrorCode(absl::Status status, OtaErrorCode code);

// The code of a failure (the table above); `status` must not be OK.
OtaErrorCode OtaErrorCodeOf(OtaStage stage, const absl::Status& status);

struct OtaFailure {
  FailureKind kind;    // the wire's failure_type
  std::string reason;  // the wire's failure_reason: "E203: <description>: <message>"
};
OtaFailure DescribeOtaFailure(OtaStage stage, const absl::Status& status);

}  // namespace ota

// Returns from the enclosing function when `expr` (an absl::Status) is not OK.
#define OTA_RETURN_IF_ERROR(expr)                       \
  do {                                                  \
    if (absl::Status _ota_st = (expr); !_ota_st.ok()) { \
      return _ota_st;                                   \
    }                                                   \
  } while (0)

#define OTA_CONCAT_INNER(a, b) a##b
#define OTA_CONCAT(a, b) OTA_CONCAT_INNER(a, b)
// OTA_ASSIGN_OR_RETURN(auto x, StatusOrExpr());
// `lhs` is a declaration or an lvalue and `tmp` a name: neither can be parenthesised.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define OTA_ASSIGN_OR_RETURN(lhs, expr) \
  OTA_ASSIGN_OR_RETURN_IMPL(OTA_CONCAT(_ota_sor_, __LINE__), lhs, expr)
#define OTA_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()
// NOLINTEND(bugprone-macro-parentheses)
