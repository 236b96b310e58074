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
