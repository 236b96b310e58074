// The one mapping of error kinds onto the wire's FailureType: local failures (errno from a file
// or device of this ECU) are UNRECOVERABLE whatever their code, remote ones (HTTP, network,
// certificates, the request) RECOVERABLE.
#include "common/util/errors.h"

#include <cerrno>
#include <string>

#include "gtest/gtest.h"

namespace ota {
namespace {

TEST(FailureKindOf, Table) {
  struct Case {
    std::string name;
    absl::Status status;
    FailureKind want;
  };
  const Case cases[] = {
      {"ok", absl::OkStatus(), FailureKind::kNone},
      // Remote: the server, the network, the image, the request.
      {"HTTP 404", absl::NotFoundError("HTTP 404 for https://x/data/a"), FailureKind::kRecoverable},
      {"HTTP 403", absl::PermissionDeniedError("HTTP 403 for https://x/"),
       FailureKind::kRecoverable},
      {"HTTP 401", absl::UnauthenticatedError("HTTP 401"), FailureKind::kRecoverable},
      {"HTTP 5xx", absl::UnavailableError("HTTP 503 after 5 attempts"), FailureKind::kRecoverable},
      {"hash", absl::DataLossError("sha256 mismatch"), FailureKind::kRecoverable},
      {"bad request", absl::InvalidArgumentError("url"), FailureKind::kRecoverable},
      {"busy", absl::FailedPreconditionError("busy"), FailureKind::kRecoverable},
      {"aborted", absl::CancelledError("aborted"), FailureKind::kRecoverable},
      {"remote timeout", absl::DeadlineExceededError("curl timeout"), FailureKind::kRecoverable},
      // Local: this ECU's files and devices.
      {"ENOENT", ErrnoStatus(ENOENT, "open /etc/x"), FailureKind::kUnrecoverable},
      {"ENOSPC", ErrnoStatus(ENOSPC, "write /x"), FailureKind::kUnrecoverable},
      {"EDQUOT", ErrnoStatus(EDQUOT, "write /x"), FailureKind::kUnrecoverable},
      {"EIO", ErrnoStatus(EIO, "read /dev/sda"), FailureKind::kUnrecoverable},
      {"EACCES", ErrnoStatus(EACCES, "open /x"), FailureKind::kUnrecoverable},
      {"local ENOENT with context",
       WithContext(ErrnoStatus(ENOENT, "open /etc/fstab"), "merging fstab"),
       FailureKind::kUnrecoverable},
      {"local timeout", LocalFailure(absl::DeadlineExceededError("mkfs.ext4: no result")),
       FailureKind::kUnrecoverable},
      {"internal", absl::InternalError("bug"), FailureKind::kUnrecoverable},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(FailureKindOf(c.status), c.want) << c.name << ": " << c.status;
  }
}

TEST(ErrnoStatus, KeepsItsCodeAndSaysWhatAndWhere) {
  const absl::Status missing = ErrnoStatus(ENOENT, "open /etc/x");
  EXPECT_TRUE(absl::IsNotFound(missing));  // callers still tell "missing" apart
  EXPECT_TRUE(IsLocalFailure(missing));
  EXPECT_EQ(missing.message(), "open /etc/x: No such file or directory");
  EXPECT_TRUE(absl::IsResourceExhausted(ErrnoStatus(ENOSPC, "write /x")));
  EXPECT_TRUE(absl::IsInternal(ErrnoStatus(EIO, "read /x")));
  const absl::Status wrapped = WithContext(missing, "loading");
  EXPECT_TRUE(absl::IsNotFound(wrapped));
  EXPECT_TRUE(IsLocalFailure(wrapped));
  EXPECT_EQ(wrapped.message(), "loading: open /etc/x: No such file or directory");
  EXPECT_FALSE(IsLocalFailure(absl::NotFoundError("HTTP 404")));
  EXPECT_FALSE(IsLocalFailure(absl::OkStatus()));
  EXPECT_TRUE(LocalFailure(absl::OkStatus()).ok());
}

}  // namespace
}  // namespace ota
