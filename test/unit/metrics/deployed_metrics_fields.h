// The deployed client's metrics record fields (OTAMetricsData in otaclient/metrics.py at
// tier4/ota-client dd36f758; upstream-behaviour-2026.md §7), in its order: one list for every
// test that checks a record.
#pragma once

#include <string>
#include <vector>

namespace ota::testing {

inline const std::vector<std::string> kDeployedMetricsFields = {
    "initializing_start_timestamp",
    "processing_metadata_start_timestamp",
    "delta_calculation_start_timestamp",
    "download_start_timestamp",
    "apply_update_start_timestamp",
    "post_update_start_timestamp",
    "finalizing_update_start_timestamp",
    "reboot_start_timestamp",
    "ecu_id",
    "request_id",
    "session_id",
    "current_firmware_version",
    "standby_firmware_version",
    "target_firmware_version",
    "otaclient_version",
    "failure_type",
    "failure_reason",
    "failed_status",
    "use_inplace_mode",
    "ota_image_format",
    "ota_image_total_files_size",
    "ota_image_total_regulars_num",
    "ota_image_total_directories_num",
    "ota_image_total_symlinks_num",
    "delta_download_files_num",
    "delta_download_files_size",
    "downloaded_bytes",
    "downloaded_errors",
    "bootloader_type",
    "enable_local_ota_proxy_cache",
    "cache_total_requests",
    "cache_cdn_hits",
    "cache_external_hits",
    "cache_external_nfs_hits",
    "cache_local_hits",
};

}  // namespace ota::testing
