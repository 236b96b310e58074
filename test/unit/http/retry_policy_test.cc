// The fetcher's retry policy as a table: which HTTP statuses and curl errors are retried and
// with which status code, the backoff schedule with its jitter bounds, Retry-After, and when the
// attempts run out.
#include "common/http/retry_policy.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ota::http {
namespace {

using ::testing::HasSubstr;

TEST(RetryPolicy, HttpStatuses) {
  struct Case {
    long code;
    absl::StatusCode status;
    bool retryable;
  };
  const std::vector<Case> cases = {
      {401, absl::StatusCode::kPermissionDenied, false},
      {403, absl::StatusCode::kPermissionDenied, false},
      {404, absl::StatusCode::kNotFound, false},
      {410, absl::StatusCode::kNotFound, false},
      {400, absl::StatusCode::kInvalidArgument, false},
      {405, absl::StatusCode::kInvalidArgument, false},
      {416, absl::StatusCode::kInvalidArgument, false},
      {304, absl::StatusCode::kInvalidArgument, false},
      {302, absl::StatusCode::kInvalidArgument, false},  // a redirect without Location
      {100, absl::StatusCode::kInvalidArgument, false},
      {408, absl::StatusCode::kUnavailable, true},
      {429, absl::StatusCode::kUnavailable, true},
      {500, absl::StatusCode::kUnavailable, true},
      {502, absl::StatusCode::kUnavailable, true},
      {503, absl::StatusCode::kUnavailable, true},
      {504, absl::StatusCode::kUnavailable, true},
      {599, absl::StatusCode::kUnavailable, true},
  };
  for (const Case& c : cases) {
    const AttemptOutcome out = ClassifyHttpCode("http://h/x", c.code, 7);
    EXPECT_EQ(out.status.code(), c.status) << c.code;
    EXPECT_EQ(out.retryable, c.retryable) << c.code;
    // Retry-After only matters for what is retried.
    EXPECT_EQ(out.retry_after_s, c.retryable ? 7 : 0) << c.code;
    EXPECT_EQ(out.status.message(), "GET http://h/x: HTTP " + std::to_string(c.code));
  }
}

TEST(RetryPolicy, CurlErrors) {
  struct Case {
    CURLcode code;
    absl::StatusCode status;
    bool retryable;
  };
  const std::vector<Case> cases = {
      {CURLE_UNSUPPORTED_PROTOCOL, absl::StatusCode::kInvalidArgument, false},  // refused redirect
      {CURLE_URL_MALFORMAT, absl::StatusCode::kInvalidArgument, false},
      {CURLE_TOO_MANY_REDIRECTS, absl::StatusCode::kInvalidArgument, false},
      {CURLE_PEER_FAILED_VERIFICATION, absl::StatusCode::kPermissionDenied, false},
      {CURLE_SSL_ISSUER_ERROR, absl::StatusCode::kPermissionDenied, false},
      {CURLE_SSL_PINNEDPUBKEYNOTMATCH, absl::StatusCode::kPermissionDenied, false},
      {CURLE_FILE_COULDNT_READ_FILE, absl::StatusCode::kNotFound, false},
      {CURLE_SSL_CACERT_BADFILE, absl::StatusCode::kInternal, false},
      {CURLE_OUT_OF_MEMORY, absl::StatusCode::kInternal, false},
      {CURLE_FAILED_INIT, absl::StatusCode::kInternal, false},
      {CURLE_WRITE_ERROR, absl::StatusCode::kInternal, false},
      {CURLE_BAD_CONTENT_ENCODING, absl::StatusCode::kDataLoss, true},
      {CURLE_COULDNT_CONNECT, absl::StatusCode::kUnavailable, true},
      {CURLE_COULDNT_RESOLVE_HOST, absl::StatusCode::kUnavailable, true},
      {CURLE_OPERATION_TIMEDOUT, absl::StatusCode::kUnavailable, true},
      {CURLE_RECV_ERROR, absl::StatusCode::kUnavailable, true},
      {CURLE_SEND_ERROR, absl::StatusCode::kUnavailable, true},
      {CURLE_PARTIAL_FILE, absl::StatusCode::kUnavailable, true},
      {CURLE_GOT_NOTHING, absl::StatusCode::kUnavailable, true},
      {CURLE_SSL_CONNECT_ERROR, absl::StatusCode::kUnavailable, true},
  };
  for (const Case& c : cases) {
    const AttemptOutcome out = ClassifyCurlError("https://h/x", c.code, "why", "");
    EXPECT_EQ(out.status.code(), c.status) << curl_easy_strerror(c.code);
    EXPECT_EQ(out.retryable, c.retryable) << curl_easy_strerror(c.code);
    EXPECT_EQ(out.retry_after_s, 0);
    EXPECT_EQ(out.status.message(), "GET https://h/x: why");
  }
  EXPECT_EQ(ClassifyCurlError("http://h/x", CURLE_COULDNT_CONNECT, "refused", "http://p:1")
                .status.message(),
            "GET http://h/x: refused (via proxy http://p:1)");
}

TEST(RetryPolicy, AttemptsRunOut) {
  const AttemptOutcome retryable{absl::UnavailableError("GET u: HTTP 503"), true};
  const AttemptOutcome final_error{absl::NotFoundError("GET u: HTTP 404"), false};
  const AttemptOutcome done{absl::OkStatus()};
  struct Case {
    const AttemptOutcome* outcome;
    int attempts;
    int max_attempts;
    bool retry;
  };
  const std::vector<Case> cases = {
      {&retryable, 1, 3, true},  {&retryable, 2, 3, true},  {&retryable, 3, 3, false},
      {&retryable, 4, 3, false}, {&retryable, 1, 1, false}, {&final_error, 1, 3, false},
      {&done, 1, 3, false},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(WillRetry(*c.outcome, c.attempts, c.max_attempts), c.retry)
        << c.outcome->status << " " << c.attempts << "/" << c.max_attempts;
  }
  EXPECT_EQ(FinalStatus(retryable, 3),
            absl::UnavailableError("GET u: HTTP 503 (gave up after 3 attempts)"));
  EXPECT_EQ(FinalStatus(final_error, 1), final_error.status);
  EXPECT_TRUE(FinalStatus(done, 2).ok());
}

TEST(RetryPolicy, BackoffDoublesUpToTheCapWithJitterInTheUpperHalf) {
  const BackoffPolicy policy{.initial_ms = 50, .max_ms = 5000};
  struct Case {
    int failed_attempts;
    int full_ms;  // before jitter
  };
  const std::vector<Case> cases = {{1, 50},   {2, 100},  {3, 200},  {4, 400},   {5, 800}, {6, 1600},
                                   {7, 3200}, {8, 5000}, {9, 5000}, {30, 5000}, {0, 50},  {-1, 50}};
  for (const Case& c : cases) {
    // random % (full/2 + 1) spans [full/2, full]: the smallest and largest random values.
    EXPECT_EQ(BackoffMs(policy, c.failed_attempts, 0, 0), c.full_ms / 2) << c.failed_attempts;
    EXPECT_EQ(BackoffMs(policy, c.failed_attempts, 0, c.full_ms / 2), c.full_ms)
        << c.failed_attempts;
    for (uint64_t random : {uint64_t{1}, uint64_t{12345}, ~uint64_t{0}}) {
      const int ms = BackoffMs(policy, c.failed_attempts, 0, random);
      EXPECT_GE(ms, c.full_ms / 2) << c.failed_attempts;
      EXPECT_LE(ms, c.full_ms) << c.failed_attempts;
    }
  }
}

TEST(RetryPolicy, RetryAfterIsAFloorCappedAtTheMaximum) {
  const BackoffPolicy policy{.initial_ms = 50, .max_ms = 5000};
  struct Case {
    int failed_attempts;
    long retry_after_s;
    uint64_t random;
    int ms;
  };
  const std::vector<Case> cases = {
      {1, 1, 0, 1000},     // Retry-After above the backoff wins
      {1, 3, 25, 3000},    //
      {1, 60, 0, 5000},    // but never beyond the cap
      {8, 1, 0, 2500},     // a longer backoff stays
      {8, 1, 2500, 5000},  //
      {1, 0, 0, 25},       // none given
      {1, -5, 0, 25},      // nonsense ignored
  };
  for (const Case& c : cases) {
    EXPECT_EQ(BackoffMs(policy, c.failed_attempts, c.retry_after_s, c.random), c.ms)
        << c.failed_attempts << " " << c.retry_after_s << " " << c.random;
  }
}

TEST(RetryPolicy, DegenerateBackoffSettings) {
  EXPECT_EQ(BackoffMs({.initial_ms = 0, .max_ms = 0}, 5, 0, 99), 0);
  EXPECT_EQ(BackoffMs({.initial_ms = 1, .max_ms = 1}, 5, 0, 99), 1);  // too small to jitter
  EXPECT_EQ(BackoffMs({.initial_ms = -10, .max_ms = 100}, 1, 0, 0), 0);
  // A cap below the initial delay: the initial delay is the cap.
  EXPECT_EQ(BackoffMs({.initial_ms = 80, .max_ms = 10}, 3, 0, 40), 80);
  EXPECT_EQ(BackoffMs({.initial_ms = 80, .max_ms = 10}, 3, 1, 0), 80);
}

}  // namespace
}  // namespace ota::http
