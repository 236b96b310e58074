// The one mapping of error kinds onto the wire's FailureType: local failures (errno from a file
// or device of this ECU) are UNRECOVERABLE whatever their code, remote ones (HTTP, network,
// certificates, the request) RECOVERABLE.
#include "common/util/errors.h"

#include <cerrno>
#include <string>
#include <vector>

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

// The E-code of each failure, by the stage it happened in and the error (errors.h's table), and
// the failure_reason / failure_type Status reports for it.
TEST(OtaErrorCodeOf, Table) {
  using S = OtaStage;
  using C = OtaErrorCode;
  const absl::Status http_403 = WithOtaErrorCode(absl::PermissionDeniedError("GET u: HTTP 403"),
                                                 C::kUpdateRequestCookieInvalid);
  const absl::Status untrusted =
      WithOtaErrorCode(absl::PermissionDeniedError("certificate x is not trusted"),
                       C::kMetadataCertVerificationFailed);
  const absl::Status http_404 = absl::NotFoundError("GET u: HTTP 404");
  const absl::Status tls = absl::PermissionDeniedError("GET u: SSL peer certificate");  // unmarked
  const absl::Status refused = absl::UnavailableError("GET u: Connection refused");
  const absl::Status timeout = absl::DeadlineExceededError("GET u: timeout");
  const absl::Status mismatch = absl::DataLossError("regulars.txt: sha256 mismatch");
  const absl::Status malformed = absl::InvalidArgumentError("dirs.txt:3: bad mode");
  const absl::Status enospc = ErrnoStatus(ENOSPC, "write /standby/x");
  const absl::Status eio = ErrnoStatus(EIO, "read /dev/sda");
  const absl::Status local_enoent = ErrnoStatus(ENOENT, "open /standby/etc/x");
  const absl::Status cancelled = absl::CancelledError("update interrupted: shutting down");
  const absl::Status bug = absl::InternalError("fetcher did not report a download");
  const absl::Status precondition = absl::FailedPreconditionError("rollback not possible");
  struct Case {
    S stage;
    absl::Status status;
    C code;
  };
  const std::vector<Case> cases = {
      // Marks win in every stage.
      {S::kMetadata, http_403, C::kUpdateRequestCookieInvalid},
      {S::kDownload, http_403, C::kUpdateRequestCookieInvalid},
      {S::kMetadata, untrusted, C::kMetadataCertVerificationFailed},
      {S::kMetadata, WithContext(untrusted, "loading image metadata"),
       C::kMetadataCertVerificationFailed},
      // Metadata.
      {S::kMetadata, http_404, C::kOtaImageInvalid},
      {S::kMetadata, mismatch, C::kOtaImageInvalid},
      {S::kMetadata, malformed, C::kOtaImageInvalid},
      {S::kMetadata, refused, C::kOtaMetaDownloadFailed},
      {S::kMetadata, timeout, C::kOtaMetaDownloadFailed},
      {S::kMetadata, tls, C::kOtaMetaDownloadFailed},
      {S::kMetadata, eio, C::kUnrecoverable},
      {S::kMetadata, enospc, C::kStandbySlotInsufficientSpace},
      {S::kMetadata, cancelled, C::kRecoverable},
      // Standby preparation (boot controller pre_update).
      {S::kPrepareStandby, eio, C::kBootControlPreUpdateFailed},
      {S::kPrepareStandby, precondition, C::kBootControlPreUpdateFailed},
      {S::kPrepareStandby, enospc, C::kStandbySlotInsufficientSpace},
      {S::kPrepareStandby, cancelled, C::kRecoverable},
      // Delta.
      {S::kDelta, eio, C::kUpdateDeltaGenerationFailed},
      {S::kDelta, bug, C::kUpdateDeltaGenerationFailed},
      {S::kDelta, enospc, C::kStandbySlotInsufficientSpace},
      // Download.
      {S::kDownload, http_404, C::kOtaImageInvalid},
      {S::kDownload, mismatch, C::kNetwork},
      {S::kDownload, refused, C::kNetwork},
      {S::kDownload, timeout, C::kNetwork},
      {S::kDownload, tls, C::kNetwork},
      {S::kDownload, malformed, C::kNetwork},
      {S::kDownload, local_enoent, C::kApplyOtaUpdateFailed},
      {S::kDownload, eio, C::kApplyOtaUpdateFailed},
      {S::kDownload, enospc, C::kStandbySlotInsufficientSpace},
      {S::kDownload, cancelled, C::kRecoverable},
      // Apply, persistents, post-update.
      {S::kApply, eio, C::kApplyOtaUpdateFailed},
      {S::kApply, malformed, C::kApplyOtaUpdateFailed},
      {S::kApply, enospc, C::kStandbySlotInsufficientSpace},
      // The boot switch (boot controller post_update).
      {S::kCommitSwitch, eio, C::kBootControlPostUpdateFailed},
      {S::kCommitSwitch, bug, C::kBootControlPostUpdateFailed},
      // Start-up, rollback.
      {S::kBootStartup, bug, C::kBootControlStartupFailed},
      {S::kBootStartup,
       WithOtaErrorCode(absl::InvalidArgumentError("no backend"),
                        C::kBootControlPlatformUnsupported),
       C::kBootControlPlatformUnsupported},
      {S::kRollbackCheck, precondition, C::kInvalidStatusForRollback},
      {S::kRollbackCommit, eio, C::kBootControlPostRollbackFailed},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(OtaErrorCodeOf(c.stage, c.status), c.code)
        << "stage " << static_cast<int>(c.stage) << ": " << c.status;
  }
}

TEST(OtaErrorCodeOf, FirstMarkWins) {
  absl::Status status =
      WithOtaErrorCode(absl::PermissionDeniedError("x"), OtaErrorCode::kUpdateRequestCookieInvalid);
  status = WithOtaErrorCode(status, OtaErrorCode::kNetwork);
  EXPECT_EQ(OtaErrorCodeOf(OtaStage::kDelta, status), OtaErrorCode::kUpdateRequestCookieInvalid);
  EXPECT_TRUE(WithOtaErrorCode(absl::OkStatus(), OtaErrorCode::kNetwork).ok());
}

// The reason fleets parse: upstream's "E<code>: <description>" word for word, then our detail;
// RECOVERABLE for 1xx/2xx, UNRECOVERABLE for 3xx.
TEST(DescribeOtaFailure, UpstreamPrefixAndFailureType) {
  struct Case {
    OtaStage stage;
    absl::Status status;
    FailureKind kind;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {OtaStage::kDownload, absl::UnavailableError("GET u: refused"), FailureKind::kRecoverable,
       "E100: network unstable, please check the network connection: GET u: refused"},
      {OtaStage::kMetadata, absl::UnavailableError("m"), FailureKind::kRecoverable,
       "E101: failed to download OTA meta due to network unstable, please check the network "
       "connection: m"},
      {OtaStage::kApply, absl::CancelledError("stop"), FailureKind::kRecoverable,
       "E200: recoverable OTA error(unrelated to network) detected, please retry after reboot "
       "device or restart otaclient: stop"},
      {OtaStage::kRollbackCheck, absl::FailedPreconditionError("r"), FailureKind::kRecoverable,
       "E202: previous OTA is not succeeded, reject OTA rollback: r"},
      {OtaStage::kMetadata, absl::NotFoundError("404"), FailureKind::kRecoverable,
       "E203: failed to complete OTA as OTA image is broken: 404"},
      {OtaStage::kDownload,
       WithOtaErrorCode(absl::PermissionDeniedError("403"),
                        OtaErrorCode::kUpdateRequestCookieInvalid),
       FailureKind::kRecoverable, "E204: failed to complete OTA as cookie is invalid: 403"},
      {OtaStage::kMetadata, ErrnoStatus(EIO, "read"), FailureKind::kUnrecoverable,
       "E300: unrecoverable OTA error, please contact technical support: read: Input/output "
       "error"},
      {OtaStage::kBootStartup,
       WithOtaErrorCode(absl::InvalidArgumentError("b"),
                        OtaErrorCode::kBootControlPlatformUnsupported),
       FailureKind::kUnrecoverable,
       "E301: unrecoverable OTA error, please contact technical support: bootloader for this ECU "
       "is not supported: b"},
      {OtaStage::kBootStartup, absl::InternalError("s"), FailureKind::kUnrecoverable,
       "E302: unrecoverable OTA error, please contact technical support: boot controller "
       "startup failed: s"},
      {OtaStage::kPrepareStandby, absl::InternalError("p"), FailureKind::kUnrecoverable,
       "E303: unrecoverable OTA error, please contact technical support: boot_control "
       "pre_update process failed: p"},
      {OtaStage::kCommitSwitch, absl::InternalError("c"), FailureKind::kUnrecoverable,
       "E304: unrecoverable OTA error, please contact technical support: boot_control "
       "post_update process failed: c"},
      {OtaStage::kRollbackCommit, absl::InternalError("r"), FailureKind::kUnrecoverable,
       "E306: unrecoverable OTA error, please contact technical support: boot_control "
       "post_rollback process failed: r"},
      {OtaStage::kApply, ErrnoStatus(ENOSPC, "write x"), FailureKind::kUnrecoverable,
       "E307: unrecoverable OTA error, please contact technical support: insufficient space at "
       "standby slot: write x: No space left on device"},
      {OtaStage::kMetadata,
       WithOtaErrorCode(absl::PermissionDeniedError("no CA"),
                        OtaErrorCode::kMetadataCertVerificationFailed),
       FailureKind::kUnrecoverable,
       "E309: unrecoverable OTA error, please contact technical support: certificate "
       "verification failed for OTA metadata.jwt: no CA"},
      {OtaStage::kDelta, ErrnoStatus(EIO, "d"), FailureKind::kUnrecoverable,
       "E312: unrecoverable OTA error, please contact technical support: failed to calculate "
       "and/or prepare update delta: d: Input/output error"},
      {OtaStage::kApply, ErrnoStatus(EIO, "a"), FailureKind::kUnrecoverable,
       "E313: unrecoverable OTA error, please contact technical support: failed to apply OTA "
       "update to standby slot: a: Input/output error"},
  };
  for (const Case& c : cases) {
    const OtaFailure failure = DescribeOtaFailure(c.stage, c.status);
    EXPECT_EQ(failure.kind, c.kind) << c.reason;
    EXPECT_EQ(failure.reason, c.reason);
  }
}

}  // namespace
}  // namespace ota
