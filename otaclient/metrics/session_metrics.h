// The fleet metrics record: one per update session, the deployed client's OTAMetricsData. A flat
// JSON object (dashboards and CloudWatch subscription filters read its fields by name), logged
// with log::Metrics: a "metrics {...}" line on stderr, and uploaded as a METRICS record over
// gRPC (over HTTP it is POSTed like a log line, as the deployed client does).
//
// Fields, in this order (ToJson is the one place that writes them):
//   initializing_start_timestamp, processing_metadata_start_timestamp,
//   delta_calculation_start_timestamp, download_start_timestamp, apply_update_start_timestamp,
//   post_update_start_timestamp, finalizing_update_start_timestamp, reboot_start_timestamp
//     unix seconds at which the session entered each phase; 0: not reached. Initializing: the
//     update was accepted; metadata: the metadata fetch (preparing the standby counts with it,
//     as the wire phase does); post-update: persistent files; finalizing: the boot switch
//     committed (the wait for the secondaries follows); reboot: the reboot was about to start
//     (0 without a reboot: --no-reboot or stopped).
//   ecu_id, request_id, session_id, current_firmware_version, standby_firmware_version,
//   target_firmware_version, otaclient_version
//     session_id: "<unix s>-<version, unsafe characters as _>-<8 hex>", the deployed client's
//     scheme, made when the session starts and logged with the request id ("update session");
//     standby_firmware_version: "" (the boot backends do not report what the standby held).
//   failure_type, failure_reason, failed_status
//     "" on success; on failure "RECOVERABLE"/"UNRECOVERABLE", the reason, "FAILURE"; after an
//     Abort "", the abort's reason and "ABORTED" (the deployed client leaves all three empty
//     after an abort).
//   use_inplace_mode  true when the standby was written in place (only what changed), false when
//                     it was rebuilt (cleaned, then written): --standby-mode, update/slot_table.h
//   ota_image_format  "legacy" or "v1" ("" when the session failed before the image was read)
//   ota_image_total_files_size, ota_image_total_regulars_num, ota_image_total_directories_num,
//   ota_image_total_symlinks_num, delta_download_files_num, delta_download_files_size,
//   downloaded_bytes (network bytes), downloaded_errors (download retries)
//   bootloader_type   "grub", "jetson-cboot", "dir" (the boot backend in use)
//   enable_local_ota_proxy_cache  proxy_info's value
//   cache_total_requests, cache_cdn_hits, cache_external_hits, cache_external_nfs_hits,
//   cache_local_hits
//     the local otaproxy's counters over this session (read when it starts and when it ends,
//     cache_counters.h); 0 without a local otaproxy or when it did not answer.
//
// When: once per update session, at its end (UpdateEngine's on_session_end): after the switch is
// committed and the secondaries have finished, right before the reboot (or at Committed without
// one); or when it failed or was aborted. Never for a rollback. Unlike the deployed client, whose
// record is published only by the first session after a (re)start of otaclient, every session
// gets its own record, with its own values.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "otaclient/metrics/cache_counters.h"
#include "otaclient/update/update_engine.h"

namespace ota::metrics {

struct SessionMetrics {
  uint64_t initializing_start_timestamp = 0;
  uint64_t processing_metadata_start_timestamp = 0;
  uint64_t delta_calculation_start_timestamp = 0;
  uint64_t download_start_timestamp = 0;
  uint64_t apply_update_start_timestamp = 0;
  uint64_t post_update_start_timestamp = 0;
  uint64_t finalizing_update_start_timestamp = 0;
  uint64_t reboot_start_timestamp = 0;
  std::string ecu_id;
  std::string request_id;
  std::string session_id;
  std::string current_firmware_version;
  std::string standby_firmware_version;
  std::string target_firmware_version;
  std::string otaclient_version;
  std::string failure_type;
  std::string failure_reason;
  std::string failed_status;
  bool use_inplace_mode = false;
  std::string ota_image_format;
  uint64_t ota_image_total_files_size = 0;
  uint64_t ota_image_total_regulars_num = 0;
  uint64_t ota_image_total_directories_num = 0;
  uint64_t ota_image_total_symlinks_num = 0;
  uint64_t delta_download_files_num = 0;
  uint64_t delta_download_files_size = 0;
  uint64_t downloaded_bytes = 0;
  uint64_t downloaded_errors = 0;
  std::string bootloader_type;
  bool enable_local_ota_proxy_cache = false;
  CacheCounters cache;
};

// The record as one line of JSON, fields in the order above.
std::string ToJson(const SessionMetrics& metrics);

// What does not change while otaclient runs.
struct MetricsContext {
  std::string ecu_id;
  std::string otaclient_version;
  std::string bootloader_type;  // UpstreamBootloaderType(backend)
  bool enable_local_ota_proxy_cache = false;
};

// The record of an ended session.
SessionMetrics BuildSessionMetrics(const MetricsContext& context, const update::SessionEnd& end,
                                   std::string_view session_id, const CacheCounters& cache);

// "<unix_seconds>-<version>-<random_hex>" with . / < > : " \ | ? * and control characters of the
// version replaced by '_' (the deployed client's session id).
std::string MakeSessionId(std::string_view version, uint64_t unix_seconds,
                          std::string_view random_hex);

// The deployed client's name for a boot backend of ours: grub → "grub", cboot → "jetson-cboot";
// others as they are.
std::string_view UpstreamBootloaderType(std::string_view backend);

// Reads the local otaproxy's counters now; nullopt when there is none or it does not answer.
using CacheReader = std::function<std::optional<CacheCounters>()>;

// Wired to UpdateEngine's on_session_start/on_session_end (otaclient/main.cc).
class SessionMetricsRecorder {
 public:
  SessionMetricsRecorder(MetricsContext context, CacheReader read_cache);
  // Makes the session id, logs it with the request id, reads the cache counters.
  void OnSessionStart(const update::UpdateRequestParams& request);
  // Reads the cache counters, builds the record and logs it (log::Metrics). Returns the JSON.
  std::string OnSessionEnd(const update::SessionEnd& end);

 private:
  const MetricsContext context_;
  const CacheReader read_cache_;
  std::mutex mu_;
  std::string session_id_;                       // guarded by mu_
  std::optional<CacheCounters> cache_at_start_;  // guarded by mu_
};

}  // namespace ota::metrics
