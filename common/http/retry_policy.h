// What one finished download attempt means and when to try again: pure functions of the
// attempt's result (HTTP status, curl error, Retry-After) and the attempt count, used by the
// fetcher's transfer loop (transfer_loop.h) and table-tested on their own.
//
//   HTTP 401/403 → kPermissionDenied, 404/410 → kNotFound, other 4xx/3xx → kInvalidArgument:
//   final. 408, 429, 5xx → kUnavailable: retried, honouring Retry-After.
//   curl: bad URL/protocol, too many redirects, a refused redirect → kInvalidArgument; the peer
//   failing TLS verification → kPermissionDenied; file:// not readable → kNotFound; local
//   failures → kInternal: final. A bad Content-Encoding → kDataLoss, anything else (refused or
//   reset connections, timeouts, truncated bodies) → kUnavailable: retried.
//   Content that fails its size/sha256/zstd check (kDataLoss from the sink) is retried too, and
//   the retry asks proxies to drop their copy (retry_caching).
#pragma once

#include <curl/curl.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace ota::http {

struct AttemptOutcome {
  absl::Status status;  // OK = done
  bool retryable = false;
  long retry_after_s = 0;  // the server's Retry-After, 0 = none
};

// An HTTP status other than 2xx. `retry_after_s` is the response's Retry-After (0 = none).
AttemptOutcome ClassifyHttpCode(std::string_view url, long code, long retry_after_s);

// A transfer curl failed with `code`; `detail` is its description (DescribeCurlFailure), `proxy`
// the proxy it went through ("" = none).
AttemptOutcome ClassifyCurlError(std::string_view url, CURLcode code, std::string_view detail,
                                 std::string_view proxy);

// True when another attempt follows `outcome` after `attempts` of at most `max_attempts`.
bool WillRetry(const AttemptOutcome& outcome, int attempts, int max_attempts);

// The final status of a task whose last attempt had `outcome`: a retryable failure says how many
// attempts were made.
absl::Status FinalStatus(const AttemptOutcome& outcome, int attempts);

struct BackoffPolicy {
  int initial_ms = 50;  // after the first failed attempt; doubled per further one
  int max_ms = 5000;
};

// Milliseconds to wait before the attempt after `failed_attempts` failures: initial · 2^(n-1),
// capped at max, then jittered into [delay/2, delay] by `random` (any value: a uniform random
// number gives a uniform delay), and at least Retry-After (itself capped at max).
int BackoffMs(const BackoffPolicy& policy, int failed_attempts, long retry_after_s,
              uint64_t random);

}  // namespace ota::http
