#include "otaclient/metrics/session_metrics.h"

#include <ctime>
#include <utility>

#include "common/log/log.h"
#include "common/util/json.h"
#include "common/util/strings.h"
#include "otaclient/service/ota_client_service.h"

namespace ota::metrics {
namespace {

// A failure reason longer than this is cut (a record is one CloudWatch event).
constexpr size_t kMaxFailureReasonBytes = 4096;

// A flat JSON object written field by field, in call order.
class ObjectWriter {
 public:
  void Number(std::string_view name, uint64_t value) { StrAppend(&Name(name), value); }
  void String(std::string_view name, std::string_view value) {
    AppendJsonString(&Name(name), value);
  }
  void Bool(std::string_view name, bool value) { Name(name).append(value ? "true" : "false"); }
  std::string Finish() && {
    out_.push_back('}');
    return std::move(out_);
  }

 private:
  std::string& Name(std::string_view name) {
    if (out_.size() > 1) out_.push_back(',');
    AppendJsonString(&out_, name);
    out_.push_back(':');
    return out_;
  }
  std::string out_ = "{";
};

uint64_t PhaseStart(const update::Progress& progress, update::UpdatePhase phase) {
  return progress.phase_start_timestamps.at(static_cast<size_t>(phase));
}

}  // namespace

std::string ToJson(const SessionMetrics& m) {
  ObjectWriter w;
  w.Number("initializing_start_timestamp", m.initializing_start_timestamp);
  w.Number("processing_metadata_start_timestamp", m.processing_metadata_start_timestamp);
  w.Number("delta_calculation_start_timestamp", m.delta_calculation_start_timestamp);
  w.Number("download_start_timestamp", m.download_start_timestamp);
  w.Number("apply_update_start_timestamp", m.apply_update_start_timestamp);
  w.Number("post_update_start_timestamp", m.post_update_start_timestamp);
  w.Number("finalizing_update_start_timestamp", m.finalizing_update_start_timestamp);
  w.Number("reboot_start_timestamp", m.reboot_start_timestamp);
  w.String("ecu_id", m.ecu_id);
  w.String("request_id", m.request_id);
  w.String("session_id", m.session_id);
  w.String("current_firmware_version", m.current_firmware_version);
  w.String("standby_firmware_version", m.standby_firmware_version);
  w.String("target_firmware_version", m.target_firmware_version);
  w.String("otaclient_version", m.otaclient_version);
  w.String("failure_type", m.failure_type);
  w.String("failure_reason", m.failure_reason);
  w.String("failed_status", m.failed_status);
  w.Bool("use_inplace_mode", m.use_inplace_mode);
  w.String("ota_image_format", m.ota_image_format);
  w.Number("ota_image_total_files_size", m.ota_image_total_files_size);
  w.Number("ota_image_total_regulars_num", m.ota_image_total_regulars_num);
  w.Number("ota_image_total_directories_num", m.ota_image_total_directories_num);
  w.Number("ota_image_total_symlinks_num", m.ota_image_total_symlinks_num);
  w.Number("delta_download_files_num", m.delta_download_files_num);
  w.Number("delta_download_files_size", m.delta_download_files_size);
  w.Number("downloaded_bytes", m.downloaded_bytes);
  w.Number("downloaded_errors", m.downloaded_errors);
  w.String("bootloader_type", m.bootloader_type);
  w.Bool("enable_local_ota_proxy_cache", m.enable_local_ota_proxy_cache);
  w.Number("cache_total_requests", m.cache.total_requests);
  w.Number("cache_cdn_hits", m.cache.cdn_hits);
  w.Number("cache_external_hits", m.cache.external_hits);
  w.Number("cache_external_nfs_hits", m.cache.external_nfs_hits);
  w.Number("cache_local_hits", m.cache.local_hits);
  return std::move(w).Finish();
}

SessionMetrics BuildSessionMetrics(const MetricsContext& context, const update::SessionEnd& end,
                                   std::string_view session_id, const CacheCounters& cache) {
  using update::UpdatePhase;
  const update::StatusSnapshot& status = end.status;
  const update::Progress& p = status.progress;
  SessionMetrics m;
  m.initializing_start_timestamp = p.update_start_timestamp;
  m.processing_metadata_start_timestamp = PhaseStart(p, UpdatePhase::kProcessingMetadata);
  m.delta_calculation_start_timestamp = PhaseStart(p, UpdatePhase::kCalculatingDelta);
  m.download_start_timestamp = PhaseStart(p, UpdatePhase::kDownloadingOtaFiles);
  m.apply_update_start_timestamp = PhaseStart(p, UpdatePhase::kApplyingUpdate);
  m.post_update_start_timestamp = PhaseStart(p, UpdatePhase::kProcessingPostupdate);
  m.finalizing_update_start_timestamp = PhaseStart(p, UpdatePhase::kFinalizingUpdate);
  m.reboot_start_timestamp = p.reboot_start_timestamp;
  m.ecu_id = context.ecu_id;
  m.request_id = end.request.request_id;
  m.session_id = std::string(session_id);
  m.current_firmware_version = status.firmware_version;
  m.target_firmware_version = end.request.version;
  m.otaclient_version = context.otaclient_version;
  if (status.status == update::OtaStatus::kFailure) {
    m.failure_type = status.failure_type == 2 ? "UNRECOVERABLE" : "RECOVERABLE";
    m.failed_status = "FAILURE";
  } else if (status.status == update::OtaStatus::kAborted) {
    m.failed_status = "ABORTED";
  }
  if (!m.failed_status.empty()) {
    m.failure_reason = status.failure_reason.substr(0, kMaxFailureReasonBytes);
  }
  m.ota_image_format = std::string(update::OtaImageFormatName(p.image_format));
  m.use_inplace_mode = p.in_place;
  m.ota_image_total_files_size = p.total_files_size;
  m.ota_image_total_regulars_num = p.total_files_num;
  m.ota_image_total_directories_num = p.total_directories_num;
  m.ota_image_total_symlinks_num = p.total_symlinks_num;
  m.delta_download_files_num = p.total_download_files_num;
  m.delta_download_files_size = p.total_download_files_size;
  m.downloaded_bytes = p.downloaded_bytes;
  m.downloaded_errors = p.downloading_errors;
  m.bootloader_type = context.bootloader_type;
  m.enable_local_ota_proxy_cache = context.enable_local_ota_proxy_cache;
  m.cache = cache;
  return m;
}

std::string MakeSessionId(std::string_view version, uint64_t unix_seconds,
                          std::string_view random_hex) {
  std::string safe(version);
  for (char& c : safe) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || std::string_view(".\\/<>:\"|?*").find(c) != std::string_view::npos) c = '_';
  }
  return StrCat(unix_seconds, "-", safe, "-", random_hex);
}

std::string_view UpstreamBootloaderType(std::string_view backend) {
  if (backend == "cboot") return "jetson-cboot";
  return backend;
}

SessionMetricsRecorder::SessionMetricsRecorder(MetricsContext context, CacheReader read_cache)
    : context_(std::move(context)), read_cache_(std::move(read_cache)) {}

namespace {

std::string NewSessionId(std::string_view version) {
  // GenerateRequestId is "<unix s>-<8 random hex>": its random part.
  const std::string request_id = service::GenerateRequestId();
  const size_t dash = request_id.rfind('-');
  return MakeSessionId(version, static_cast<uint64_t>(std::time(nullptr)),
                       request_id.substr(dash == std::string::npos ? 0 : dash + 1, 8));
}

}  // namespace

void SessionMetricsRecorder::OnSessionStart(const update::UpdateRequestParams& request) {
  std::optional<CacheCounters> cache;
  if (read_cache_) cache = read_cache_();
  const std::string session_id = NewSessionId(request.version);
  {
    std::lock_guard<std::mutex> lock(mu_);
    session_id_ = session_id;
    cache_at_start_ = cache;
  }
  log::Info("update session", {{"session_id", session_id}, {"request_id", request.request_id}});
}

std::string SessionMetricsRecorder::OnSessionEnd(const update::SessionEnd& end) {
  std::optional<CacheCounters> cache_now;
  if (read_cache_) cache_now = read_cache_();
  std::string session_id;
  std::optional<CacheCounters> cache_at_start;
  {
    std::lock_guard<std::mutex> lock(mu_);
    session_id = std::exchange(session_id_, std::string());
    cache_at_start = std::exchange(cache_at_start_, std::nullopt);
  }
  if (session_id.empty()) session_id = NewSessionId(end.request.version);
  CacheCounters cache;
  if (cache_now.has_value()) {
    cache = cache_at_start.has_value() ? CountersSince(*cache_at_start, *cache_now) : *cache_now;
  }
  std::string json = ToJson(BuildSessionMetrics(context_, end, session_id, cache));
  log::Metrics(json);
  return json;
}

}  // namespace ota::metrics
