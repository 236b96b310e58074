// The snapshot → wire mapping, field by field. Every counter gets a distinct value so a field
// wired to the wrong source cannot go unnoticed.
#include "otaclient/service/status_mapping.h"

#include <gtest/gtest.h>

namespace ota::service {
namespace {

update::StatusSnapshot DistinctSnapshot(update::OtaStatus status) {
  update::StatusSnapshot s;
  s.status = status;
  s.failure_type = 1;
  s.failure_reason = "download of /usr/bin/x failed: HTTP 503";
  s.firmware_version = "v1.2.3";
  s.release_name = "rel-name";
  s.release_id = "rel-id";
  s.image_id = "img-id";
  update::Progress& p = s.progress;
  p.phase = update::UpdatePhase::kDownloadingOtaFiles;
  p.v1_phase = update::V1Phase::kRegular;
  p.update_firmware_version = "v2.0.0";
  p.update_start_timestamp = 1700000000;
  p.total_files_num = 101;
  p.total_files_size = 102;
  p.total_download_files_num = 103;
  p.total_download_files_size = 104;
  p.downloaded_files_num = 105;
  p.downloaded_files_size = 106;
  p.downloaded_bytes = 107;
  p.downloading_errors = 108;
  p.processed_files_num = 109;
  p.processed_files_size = 110;
  p.files_copy = 111;
  p.size_copy = 112;
  p.files_link = 113;
  p.size_link = 114;
  p.files_download = 115;
  p.size_download = 116;
  p.total_elapsed_ms = 61001;  // 61 s + 1 ms
  p.delta_elapsed_ms = 2002;
  p.download_elapsed_ms = 3003;
  p.apply_elapsed_ms = 4004;
  p.copy_elapsed_ms = 5005;
  p.link_elapsed_ms = 999;
  return s;
}

void ExpectDuration(const google::protobuf::Duration& d, int64_t seconds, int32_t nanos) {
  EXPECT_EQ(d.seconds(), seconds);
  EXPECT_EQ(d.nanos(), nanos);
}

TEST(ServiceMillisToDurationTest, SplitsSecondsAndNanos) {
  struct Case {
    uint64_t millis;
    int64_t seconds;
    int32_t nanos;
  };
  const Case cases[] = {{0, 0, 0},
                        {1, 0, 1000000},
                        {999, 0, 999000000},
                        {1000, 1, 0},
                        {61001, 61, 1000000},
                        {uint64_t{1} << 40, (int64_t{1} << 40) / 1000,
                         static_cast<int32_t>(((uint64_t{1} << 40) % 1000) * 1000000)}};
  for (const Case& c : cases) {
    google::protobuf::Duration d;
    MillisToDuration(c.millis, &d);
    EXPECT_EQ(d.seconds(), c.seconds) << c.millis;
    EXPECT_EQ(d.nanos(), c.nanos) << c.millis;
  }
}

TEST(ServiceStatusMappingTest, V2WhileUpdatingHasEveryUpdateStatusField) {
  const auto v2 = ToEcuStatusV2(DistinctSnapshot(update::OtaStatus::kUpdating), "main", "0.1.0");
  EXPECT_EQ(v2.ecu_id(), "main");
  EXPECT_EQ(v2.firmware_version(), "v1.2.3");
  EXPECT_EQ(v2.otaclient_version(), "0.1.0");
  EXPECT_EQ(v2.release_name(), "rel-name");
  EXPECT_EQ(v2.release_id(), "rel-id");
  EXPECT_EQ(v2.image_id(), "img-id");
  EXPECT_EQ(v2.ota_status(), OtaClientV2::UPDATING);
  // Present on every entry (as upstream fills them): NO_FAILURE and "" while updating.
  ASSERT_TRUE(v2.has_failure_type());
  EXPECT_EQ(v2.failure_type(), OtaClientV2::NO_FAILURE);
  ASSERT_TRUE(v2.has_failure_reason());
  EXPECT_EQ(v2.failure_reason(), "");
  EXPECT_FALSE(v2.has_failure_traceback());
  ASSERT_TRUE(v2.has_update_status());
  const OtaClientV2::UpdateStatus& u = v2.update_status();
  EXPECT_EQ(u.update_firmware_version(), "v2.0.0");
  EXPECT_EQ(u.total_files_size_uncompressed(), 102u);
  EXPECT_EQ(u.total_files_num(), 101u);
  EXPECT_EQ(u.update_start_timestamp(), 1700000000u);
  EXPECT_EQ(u.phase(), OtaClientV2::DOWNLOADING_OTA_FILES);
  EXPECT_EQ(u.total_download_files_num(), 103u);
  EXPECT_EQ(u.total_download_files_size(), 104u);
  EXPECT_EQ(u.downloaded_files_num(), 105u);
  EXPECT_EQ(u.downloaded_bytes(), 107u);
  EXPECT_EQ(u.downloaded_files_size(), 106u);
  EXPECT_EQ(u.downloading_errors(), 108u);
  EXPECT_EQ(u.total_remove_files_num(), 0u);
  EXPECT_EQ(u.removed_files_num(), 0u);
  EXPECT_EQ(u.processed_files_num(), 109u);
  EXPECT_EQ(u.processed_files_size(), 110u);
  ExpectDuration(u.total_elapsed_time(), 61, 1000000);
  ExpectDuration(u.delta_generating_elapsed_time(), 2, 2000000);
  ExpectDuration(u.downloading_elapsed_time(), 3, 3000000);
  ExpectDuration(u.update_applying_elapsed_time(), 4, 4000000);
}

TEST(ServiceStatusMappingTest, V2FailureHasTypeAndReasonButNoUpdateStatus) {
  auto snapshot = DistinctSnapshot(update::OtaStatus::kFailure);
  snapshot.failure_type = 2;
  const auto v2 = ToEcuStatusV2(snapshot, "main", "0.1.0");
  EXPECT_EQ(v2.ota_status(), OtaClientV2::FAILURE);
  ASSERT_TRUE(v2.has_failure_type());
  EXPECT_EQ(v2.failure_type(), OtaClientV2::UNRECOVERABLE);
  ASSERT_TRUE(v2.has_failure_reason());
  EXPECT_EQ(v2.failure_reason(), "download of /usr/bin/x failed: HTTP 503");
  EXPECT_FALSE(v2.has_update_status());
}

TEST(ServiceStatusMappingTest, V2OutOfRangeFailureTypeIsReportedUnrecoverable) {
  auto snapshot = DistinctSnapshot(update::OtaStatus::kFailure);
  snapshot.failure_type = 42;
  EXPECT_EQ(ToEcuStatusV2(snapshot, "main", "x").failure_type(), OtaClientV2::UNRECOVERABLE);
}

// As upstream: failure_type and failure_reason on every entry; the snapshot's only for FAILURE
// and ROLLBACK_FAILURE, NO_FAILURE and "" otherwise (a leftover reason is not shown).
TEST(ServiceStatusMappingTest, V2FailureFieldsAreOnEveryEntryAndSetOnlyForFailures) {
  const update::OtaStatus statuses[] = {
      update::OtaStatus::kInitialized,    update::OtaStatus::kSuccess,
      update::OtaStatus::kRollbacking,    update::OtaStatus::kRollbackFailure,
      update::OtaStatus::kClientUpdating, update::OtaStatus::kAborting,
      update::OtaStatus::kAborted,        update::OtaStatus::kFailure};
  for (update::OtaStatus status : statuses) {
    const bool failed =
        status == update::OtaStatus::kFailure || status == update::OtaStatus::kRollbackFailure;
    const auto v2 = ToEcuStatusV2(DistinctSnapshot(status), "sub", "0.1.0");
    EXPECT_EQ(static_cast<int>(v2.ota_status()), static_cast<int>(status));
    ASSERT_TRUE(v2.has_failure_type()) << static_cast<int>(status);
    ASSERT_TRUE(v2.has_failure_reason()) << static_cast<int>(status);
    EXPECT_EQ(v2.failure_type(), failed ? OtaClientV2::RECOVERABLE : OtaClientV2::NO_FAILURE)
        << static_cast<int>(status);
    EXPECT_EQ(v2.failure_reason(), failed ? "download of /usr/bin/x failed: HTTP 503" : "")
        << static_cast<int>(status);
    EXPECT_FALSE(v2.has_update_status()) << static_cast<int>(status);
    EXPECT_FALSE(v2.has_failure_traceback());
    EXPECT_EQ(v2.firmware_version(), "v1.2.3");
    // The v1 view says the same.
    const auto v1 = ToEcuStatusV1(DistinctSnapshot(status), "sub");
    EXPECT_EQ(v1.status().failure(), v2.failure_type());
    EXPECT_EQ(v1.status().failure_reason(), v2.failure_reason());
  }
}

TEST(ServiceStatusMappingTest, V1HasStatusAndAllSixteenProgressFields) {
  const auto v1 = ToEcuStatusV1(DistinctSnapshot(update::OtaStatus::kUpdating), "main");
  EXPECT_EQ(v1.ecu_id(), "main");
  EXPECT_EQ(v1.result(), OtaClientV2::NO_FAILURE);
  const OtaClientV2::Status& s = v1.status();
  EXPECT_EQ(s.status(), OtaClientV2::UPDATING);
  EXPECT_EQ(s.failure(), OtaClientV2::NO_FAILURE);  // only failures carry one
  EXPECT_EQ(s.failure_reason(), "");
  EXPECT_EQ(s.version(), "v1.2.3");
  ASSERT_TRUE(s.has_progress());
  const OtaClientV2::StatusProgress& p = s.progress();
  EXPECT_EQ(p.phase(), OtaClientV2::REGULAR);             // 1
  EXPECT_EQ(p.total_regular_files(), 101u);               // 2
  EXPECT_EQ(p.regular_files_processed(), 109u);           // 3
  EXPECT_EQ(p.files_processed_copy(), 111u);              // 4
  EXPECT_EQ(p.files_processed_link(), 113u);              // 5
  EXPECT_EQ(p.files_processed_download(), 115u);          // 6
  EXPECT_EQ(p.file_size_processed_copy(), 112u);          // 7
  EXPECT_EQ(p.file_size_processed_link(), 114u);          // 8
  EXPECT_EQ(p.file_size_processed_download(), 116u);      // 9
  ExpectDuration(p.elapsed_time_copy(), 5, 5000000);      // 10
  ExpectDuration(p.elapsed_time_link(), 0, 999000000);    // 11
  ExpectDuration(p.elapsed_time_download(), 3, 3000000);  // 12
  EXPECT_EQ(p.errors_download(), 108u);                   // 13
  EXPECT_EQ(p.total_regular_file_size(), 102u);           // 14
  ExpectDuration(p.total_elapsed_time(), 61, 1000000);    // 15
  EXPECT_EQ(p.download_bytes(), 107u);                    // 16
}

TEST(ServiceStatusMappingTest, V1EveryStatusAndPhaseValueMapsToTheSameWireNumber) {
  for (int status = 0; status <= 8; ++status) {
    auto snapshot = DistinctSnapshot(static_cast<update::OtaStatus>(status));
    EXPECT_EQ(static_cast<int>(ToEcuStatusV1(snapshot, "e").status().status()), status);
  }
  for (int phase = 0; phase <= 6; ++phase) {
    auto snapshot = DistinctSnapshot(update::OtaStatus::kUpdating);
    snapshot.progress.v1_phase = static_cast<update::V1Phase>(phase);
    snapshot.progress.phase = static_cast<update::UpdatePhase>(phase);
    EXPECT_EQ(static_cast<int>(ToEcuStatusV1(snapshot, "e").status().progress().phase()), phase);
    EXPECT_EQ(static_cast<int>(ToEcuStatusV2(snapshot, "e", "v").update_status().phase()), phase);
  }
}

TEST(ServiceStatusMappingTest, DefaultSnapshotIsInitializedNoFailure) {
  const update::StatusSnapshot empty;
  const auto v1 = ToEcuStatusV1(empty, "e");
  EXPECT_EQ(v1.status().status(), OtaClientV2::INITIALIZED);
  EXPECT_EQ(v1.status().failure(), OtaClientV2::NO_FAILURE);
  EXPECT_EQ(v1.status().version(), "");
  const auto v2 = ToEcuStatusV2(empty, "e", "v");
  EXPECT_EQ(v2.ota_status(), OtaClientV2::INITIALIZED);
  EXPECT_FALSE(v2.has_update_status());
  EXPECT_TRUE(v2.has_failure_type());
  EXPECT_EQ(v2.failure_type(), OtaClientV2::NO_FAILURE);
}

}  // namespace
}  // namespace ota::service
