#include "common/http/retry_policy.h"

#include <algorithm>

#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::http {

AttemptOutcome ClassifyHttpCode(std::string_view url, long code, long retry_after_s) {
  std::string msg = StrCat("GET ", url, ": HTTP ", static_cast<int64_t>(code));
  // The server refused the request's credentials (cookies): reported as E204 like upstream.
  if (code == 401 || code == 403) {
    return {WithOtaErrorCode(absl::PermissionDeniedError(msg),
                             OtaErrorCode::kUpdateRequestCookieInvalid)};
  }
  if (code == 404 || code == 410) return {absl::NotFoundError(msg)};
  if (code == 408 || code == 429 || code >= 500) {
    return {absl::UnavailableError(msg), true, retry_after_s};
  }
  return {absl::InvalidArgumentError(msg)};
}

AttemptOutcome ClassifyCurlError(std::string_view url, CURLcode code, std::string_view detail,
                                 std::string_view proxy) {
  std::string msg = StrCat("GET ", url, ": ", detail);
  if (!proxy.empty()) StrAppend(&msg, " (via proxy ", proxy, ")");
  switch (code) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_TOO_MANY_REDIRECTS:
      return {absl::InvalidArgumentError(msg)};
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
      // The server is not who it claims to be; asking again will not change that.
      return {absl::PermissionDeniedError(msg)};
    case CURLE_FILE_COULDNT_READ_FILE:
      return {absl::NotFoundError(msg)};
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_OUT_OF_MEMORY:
    case CURLE_FAILED_INIT:
    case CURLE_WRITE_ERROR:
      return {absl::InternalError(msg)};
    case CURLE_BAD_CONTENT_ENCODING:
      return {absl::DataLossError(msg), true};
    default:
      // Refused / reset connections, timeouts, truncated bodies, TLS handshake hiccups.
      return {absl::UnavailableError(msg), true};
  }
}

bool WillRetry(const AttemptOutcome& outcome, int attempts, int max_attempts) {
  return !outcome.status.ok() && outcome.retryable && attempts < max_attempts;
}

absl::Status FinalStatus(const AttemptOutcome& outcome, int attempts) {
  if (outcome.status.ok() || !outcome.retryable) return outcome.status;
  return absl::Status(outcome.status.code(),
                      StrCat(outcome.status.message(), " (gave up after ", attempts, " attempts)"));
}

int BackoffMs(const BackoffPolicy& policy, int failed_attempts, long retry_after_s,
              uint64_t random) {
  int64_t initial = std::max(policy.initial_ms, 0);
  int64_t cap = std::max<int64_t>(policy.max_ms, initial);
  int64_t delay = initial;
  for (int i = 1; i < failed_attempts && delay < cap; ++i) delay *= 2;
  delay = std::min(delay, cap);
  // Jitter in [delay/2, delay] keeps many clients of one server from retrying in lockstep.
  if (delay > 1) delay = delay / 2 + static_cast<int64_t>(random % (delay / 2 + 1));
  if (retry_after_s > 0) delay = std::max(delay, std::min<int64_t>(retry_after_s * 1000, cap));
  return static_cast<int>(delay);
}

}  // namespace ota::http
