// The fleet metrics record: the deployed client's field names in its order, values from a
// session's end, the otaproxy's counters read defensively, the session id scheme.
#include "otaclient/metrics/session_metrics.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "test/unit/metrics/deployed_metrics_fields.h"

namespace ota::metrics {
namespace {

using ::ota::testing::kDeployedMetricsFields;

std::vector<std::string> KeysInOrder(const std::string& json) {
  const nlohmann::ordered_json parsed = nlohmann::ordered_json::parse(json);
  std::vector<std::string> keys;
  for (const auto& [key, value] : parsed.items()) keys.push_back(key);
  return keys;
}

update::SessionEnd CommittedEnd() {
  update::SessionEnd end;
  end.request.version = "2.1.0";
  end.request.request_id = "req-7";
  end.committed = true;
  end.rebooting = true;
  end.status.status = update::OtaStatus::kUpdating;
  end.status.firmware_version = "2.0.0";
  update::Progress& p = end.status.progress;
  p.update_start_timestamp = 1000;
  p.phase_start_timestamps = {1000, 1001, 1005, 1010, 1050, 1080, 1090};
  p.reboot_start_timestamp = 1095;
  p.total_files_size = 123456;
  p.total_files_num = 40;
  p.total_directories_num = 12;
  p.total_symlinks_num = 5;
  p.total_download_files_num = 7;
  p.total_download_files_size = 4567;
  p.downloaded_bytes = 3000;
  p.downloading_errors = 2;
  p.image_format = update::OtaImageFormat::kLegacy;
  return end;
}

const MetricsContext kContext{.ecu_id = "main",
                              .otaclient_version = "0.1.0",
                              .bootloader_type = "grub",
                              .enable_local_ota_proxy_cache = true};

TEST(SessionMetrics, FieldsAreTheDeployedClientsInItsOrder) {
  EXPECT_EQ(KeysInOrder(ToJson(SessionMetrics{})), kDeployedMetricsFields);
}

TEST(SessionMetrics, ACommittedSessionsRecord) {
  const CacheCounters cache{.total_requests = 9, .cdn_hits = 0, .local_hits = 4};
  const std::string json = ToJson(BuildSessionMetrics(kContext, CommittedEnd(), "sid", cache));
  const nlohmann::json m = nlohmann::json::parse(json);
  EXPECT_EQ(m["initializing_start_timestamp"], 1000);
  EXPECT_EQ(m["processing_metadata_start_timestamp"], 1001);
  EXPECT_EQ(m["delta_calculation_start_timestamp"], 1005);
  EXPECT_EQ(m["download_start_timestamp"], 1010);
  EXPECT_EQ(m["apply_update_start_timestamp"], 1050);
  EXPECT_EQ(m["post_update_start_timestamp"], 1080);
  EXPECT_EQ(m["finalizing_update_start_timestamp"], 1090);
  EXPECT_EQ(m["reboot_start_timestamp"], 1095);
  EXPECT_EQ(m["ecu_id"], "main");
  EXPECT_EQ(m["request_id"], "req-7");
  EXPECT_EQ(m["session_id"], "sid");
  EXPECT_EQ(m["current_firmware_version"], "2.0.0");
  EXPECT_EQ(m["standby_firmware_version"], "");
  EXPECT_EQ(m["target_firmware_version"], "2.1.0");
  EXPECT_EQ(m["otaclient_version"], "0.1.0");
  EXPECT_EQ(m["failure_type"], "");
  EXPECT_EQ(m["failure_reason"], "");
  EXPECT_EQ(m["failed_status"], "");
  EXPECT_EQ(m["use_inplace_mode"], false);
  EXPECT_EQ(m["ota_image_format"], "legacy");
  EXPECT_EQ(m["ota_image_total_files_size"], 123456);
  EXPECT_EQ(m["ota_image_total_regulars_num"], 40);
  EXPECT_EQ(m["ota_image_total_directories_num"], 12);
  EXPECT_EQ(m["ota_image_total_symlinks_num"], 5);
  EXPECT_EQ(m["delta_download_files_num"], 7);
  EXPECT_EQ(m["delta_download_files_size"], 4567);
  EXPECT_EQ(m["downloaded_bytes"], 3000);
  EXPECT_EQ(m["downloaded_errors"], 2);
  EXPECT_EQ(m["bootloader_type"], "grub");
  EXPECT_EQ(m["enable_local_ota_proxy_cache"], true);
  EXPECT_EQ(m["cache_total_requests"], 9);
  EXPECT_EQ(m["cache_cdn_hits"], 0);
  EXPECT_EQ(m["cache_local_hits"], 4);
  EXPECT_EQ(json.find('\n'), std::string::npos);  // one line

  // A session that wrote the standby in place says so (issue 18).
  update::SessionEnd in_place = CommittedEnd();
  in_place.status.progress.in_place = true;
  EXPECT_EQ(nlohmann::json::parse(
                ToJson(BuildSessionMetrics(kContext, in_place, "sid", cache)))["use_inplace_mode"],
            true);
}

TEST(SessionMetrics, FailuresAndAbortsSayWhy) {
  update::SessionEnd failed = CommittedEnd();
  failed.committed = failed.rebooting = false;
  failed.status.status = update::OtaStatus::kFailure;
  failed.status.failure_type = 2;
  failed.status.failure_reason = std::string(5000, 'r') + "\"quoted\"";
  nlohmann::json m = nlohmann::json::parse(ToJson(BuildSessionMetrics(kContext, failed, "s", {})));
  EXPECT_EQ(m["failure_type"], "UNRECOVERABLE");
  EXPECT_EQ(m["failed_status"], "FAILURE");
  EXPECT_EQ(m["failure_reason"], std::string(4096, 'r'));  // cut

  failed.status.failure_type = 1;
  failed.status.failure_reason = "HTTP 404 for https://h/metadata.jwt";
  m = nlohmann::json::parse(ToJson(BuildSessionMetrics(kContext, failed, "s", {})));
  EXPECT_EQ(m["failure_type"], "RECOVERABLE");
  EXPECT_EQ(m["failure_reason"], "HTTP 404 for https://h/metadata.jwt");

  update::SessionEnd aborted = CommittedEnd();
  aborted.committed = aborted.rebooting = false;
  aborted.status.status = update::OtaStatus::kAborted;
  aborted.status.failure_reason = "update to version 2.1.0 aborted by request during Downloading";
  m = nlohmann::json::parse(ToJson(BuildSessionMetrics(kContext, aborted, "s", {})));
  EXPECT_EQ(m["failure_type"], "");
  EXPECT_EQ(m["failed_status"], "ABORTED");
  EXPECT_EQ(m["failure_reason"], aborted.status.failure_reason);
}

TEST(SessionMetrics, SessionIdsAndBootloaderNames) {
  EXPECT_EQ(MakeSessionId("1.2.3", 1785587696, "0a1b2c3d"), "1785587696-1_2_3-0a1b2c3d");
  EXPECT_EQ(MakeSessionId("a/b\\c:d*e?f\"g<h>i|j\tk", 1, "ff"), "1-a_b_c_d_e_f_g_h_i_j_k-ff");
  EXPECT_EQ(UpstreamBootloaderType("grub"), "grub");
  EXPECT_EQ(UpstreamBootloaderType("cboot"), "jetson-cboot");
  EXPECT_EQ(UpstreamBootloaderType("dir"), "dir");
}

TEST(CacheCounters, ReadFromOtaproxyStatsDefensively) {
  // otaproxy/server/admin.cc's answer.
  auto ours = CacheCountersFromStatsJson(
      R"({"requests":120,"cache_hits":80,"cache_misses":40,"flight_joins":3,"relayed":1,)"
      R"("upstream_fetches":40,"upstream_failures":0,"verify_failures":0,"committed":40,)"
      R"("rejected_busy":0,"cache_entries":40,"cache_bytes":1000,"evictions":0,"inflight":0,)"
      R"("index_pending":0})");
  ASSERT_TRUE(ours.has_value());
  EXPECT_EQ(*ours, (CacheCounters{.total_requests = 120, .local_hits = 80}));
  // Renamed counters (the metrics' own names), with extra fields.
  auto renamed = CacheCountersFromStatsJson(
      R"({"cache_total_requests":5,"cache_cdn_hits":1,"cache_external_hits":2,)"
      R"("cache_external_nfs_hits":3,"cache_local_hits":4,"new_counter":9})");
  ASSERT_TRUE(renamed.has_value());
  EXPECT_EQ(*renamed, (CacheCounters{.total_requests = 5,
                                     .cdn_hits = 1,
                                     .external_hits = 2,
                                     .external_nfs_hits = 3,
                                     .local_hits = 4}));
  // Missing, negative, fractional, text: 0.
  auto odd = CacheCountersFromStatsJson(
      R"({"requests":-1,"cache_hits":"80","cdn_hits":1.5,"external_hits":null})");
  ASSERT_TRUE(odd.has_value());
  EXPECT_EQ(*odd, CacheCounters{});
  EXPECT_FALSE(CacheCountersFromStatsJson("").has_value());
  EXPECT_FALSE(CacheCountersFromStatsJson("[1,2]").has_value());
  EXPECT_FALSE(CacheCountersFromStatsJson("{\"requests\":").has_value());
}

TEST(CacheCounters, CountedOverTheSession) {
  const CacheCounters start{.total_requests = 100, .cdn_hits = 1, .local_hits = 50};
  const CacheCounters end{.total_requests = 130, .cdn_hits = 1, .local_hits = 70};
  EXPECT_EQ(CountersSince(start, end), (CacheCounters{.total_requests = 30, .local_hits = 20}));
  // The otaproxy restarted meanwhile: its counters since then.
  const CacheCounters restarted{.total_requests = 12, .local_hits = 3};
  EXPECT_EQ(CountersSince(start, restarted), restarted);
}

// The recorder reads the counters at the start and the end and logs one record per session.
TEST(SessionMetricsRecorder, OneRecordPerSessionWithItsOwnSessionIdAndCounters) {
  int reads = 0;
  SessionMetricsRecorder recorder(kContext, [&reads]() -> std::optional<CacheCounters> {
    ++reads;
    return CacheCounters{.total_requests = static_cast<uint64_t>(10 * reads),
                         .local_hits = static_cast<uint64_t>(reads)};
  });
  update::SessionEnd end = CommittedEnd();
  recorder.OnSessionStart(end.request);
  const nlohmann::json first = nlohmann::json::parse(recorder.OnSessionEnd(end));
  recorder.OnSessionStart(end.request);
  const nlohmann::json second = nlohmann::json::parse(recorder.OnSessionEnd(end));
  EXPECT_EQ(reads, 4);
  EXPECT_EQ(first["cache_total_requests"], 10);  // 20 - 10
  EXPECT_EQ(first["cache_local_hits"], 1);
  EXPECT_EQ(second["cache_total_requests"], 10);  // 40 - 30
  const std::string id = first["session_id"];
  EXPECT_TRUE(id.find("-2_1_0-") != std::string::npos) << id;
  EXPECT_NE(first["session_id"], second["session_id"]);

  // No otaproxy: zeros.
  SessionMetricsRecorder without(kContext, [] { return std::optional<CacheCounters>(); });
  without.OnSessionStart(end.request);
  const nlohmann::json none = nlohmann::json::parse(without.OnSessionEnd(end));
  EXPECT_EQ(none["cache_total_requests"], 0);
}

}  // namespace
}  // namespace ota::metrics
