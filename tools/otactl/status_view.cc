#include "tools/otactl/status_view.h"

#include <algorithm>
#include <cstdio>

#include "common/util/strings.h"

namespace ota::otactl {
namespace {

uint64_t DurationMillis(const google::protobuf::Duration& d) {
  if (d.seconds() < 0 || d.nanos() < 0) return 0;
  return static_cast<uint64_t>(d.seconds()) * 1000 + static_cast<uint64_t>(d.nanos()) / 1000000;
}

std::optional<double> Percent(uint64_t done, uint64_t total) {
  if (total == 0) return std::nullopt;
  return std::min(100.0, 100.0 * static_cast<double>(done) / static_cast<double>(total));
}

EcuRow RowFromV2(const OtaClientV2::StatusResponseEcuV2& ecu) {
  EcuRow row;
  row.ecu_id = ecu.ecu_id();
  row.status = ecu.ota_status();
  row.version = ecu.firmware_version();
  if (ecu.ota_status() == OtaClientV2::FAILURE || ecu.has_failure_reason()) {
    row.failure_reason = ecu.failure_reason();
  }
  if (ecu.has_update_status()) {
    const OtaClientV2::UpdateStatus& u = ecu.update_status();
    row.phase = OtaClientV2::UpdatePhase_Name(u.phase());
    row.update_version = u.update_firmware_version();
    // Files land on the standby only after they are all downloaded, so the download phase
    // shows its own progress and the later phases show files in place.
    row.percent = u.phase() == OtaClientV2::DOWNLOADING_OTA_FILES
                      ? Percent(u.downloaded_files_size(), u.total_download_files_size())
                      : Percent(u.processed_files_size(), u.total_files_size_uncompressed());
    row.downloaded_size = u.downloaded_files_size();
    row.download_total = u.total_download_files_size();
    row.downloaded_bytes = u.downloaded_bytes();
    row.download_elapsed_ms = DurationMillis(u.downloading_elapsed_time());
    row.downloading = u.phase() == OtaClientV2::DOWNLOADING_OTA_FILES;
  }
  return row;
}

// Daemons older than v2 only fill the v1 view.
EcuRow RowFromV1(const OtaClientV2::StatusResponseEcu& ecu) {
  EcuRow row;
  row.ecu_id = ecu.ecu_id();
  const OtaClientV2::Status& s = ecu.status();
  row.status = s.status();
  row.version = s.version();
  if (s.status() == OtaClientV2::FAILURE) row.failure_reason = s.failure_reason();
  if (ecu.result() != OtaClientV2::NO_FAILURE && !ecu.has_status()) {
    row.failure_reason = "status unknown (ECU did not answer)";
  }
  if (s.status() == OtaClientV2::UPDATING) {
    const OtaClientV2::StatusProgress& p = s.progress();
    row.phase = OtaClientV2::StatusProgressPhase_Name(p.phase());
    const uint64_t done = p.file_size_processed_copy() + p.file_size_processed_link() +
                          p.file_size_processed_download();
    row.percent = Percent(done, p.total_regular_file_size());
    row.downloaded_size = p.file_size_processed_download();
    row.downloaded_bytes = p.download_bytes();
    row.download_elapsed_ms = DurationMillis(p.elapsed_time_download());
    row.downloading = p.phase() == OtaClientV2::REGULAR;
  }
  return row;
}

std::string OneLine(std::string text) {
  std::replace_if(
      text.begin(), text.end(), [](char c) { return c == '\n' || c == '\r' || c == '\t'; }, ' ');
  return text;
}

std::string Fixed1(double value) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f", value);
  return buf;
}

}  // namespace

std::vector<EcuRow> RowsFromResponse(const OtaClientV2::StatusResponse& response) {
  std::vector<EcuRow> rows;
  if (response.ecu_v2_size() > 0) {
    for (const auto& ecu : response.ecu_v2()) rows.push_back(RowFromV2(ecu));
  } else {
    for (const auto& ecu : response.ecu()) rows.push_back(RowFromV1(ecu));
  }
  return rows;
}

bool InProgress(OtaClientV2::StatusOta status) {
  return status == OtaClientV2::UPDATING || status == OtaClientV2::ROLLBACKING ||
         status == OtaClientV2::CLIENT_UPDATING || status == OtaClientV2::ABORTING;
}

int ExitCodeForRows(const std::vector<EcuRow>& rows) {
  bool failed = false;
  for (const EcuRow& row : rows) {
    if (InProgress(row.status)) return kExitInProgress;
    if (row.status == OtaClientV2::FAILURE || row.status == OtaClientV2::ROLLBACK_FAILURE ||
        row.status == OtaClientV2::ABORTED) {
      failed = true;
    }
  }
  return failed ? kExitFailed : kExitOk;
}

std::string HumanBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return StrCat(bytes, " B");
  double value = static_cast<double>(bytes) / 1024.0;
  int unit = 0;
  while (value >= 1024.0 && unit < 5) {
    value /= 1024.0;
    ++unit;
  }
  return StrCat(Fixed1(value), " ", kUnits[unit]);
}

std::string HumanDuration(uint64_t seconds) {
  char buf[48];
  if (seconds < 60) {
    std::snprintf(buf, sizeof(buf), "%llus", static_cast<unsigned long long>(seconds));
  } else if (seconds < 3600) {
    std::snprintf(buf, sizeof(buf), "%llum%02llus", static_cast<unsigned long long>(seconds / 60),
                  static_cast<unsigned long long>(seconds % 60));
  } else {
    std::snprintf(buf, sizeof(buf), "%lluh%02llum", static_cast<unsigned long long>(seconds / 3600),
                  static_cast<unsigned long long>(seconds % 3600 / 60));
  }
  return buf;
}

std::string ProgressBar(double percent, int width) {
  percent = std::clamp(percent, 0.0, 100.0);
  const int filled = static_cast<int>(percent / 100.0 * width);
  return StrCat("[", std::string(filled, '#'), std::string(width - filled, '.'), "]");
}

std::optional<double> SpeedTracker::Update(const EcuRow& row, uint64_t now_ms) {
  std::optional<double> speed;
  auto previous = last_.find(row.ecu_id);
  if (previous != last_.end() && now_ms > previous->second.at_ms &&
      row.downloaded_bytes >= previous->second.bytes) {
    speed = static_cast<double>(row.downloaded_bytes - previous->second.bytes) * 1000.0 /
            static_cast<double>(now_ms - previous->second.at_ms);
  } else if (row.download_elapsed_ms > 0) {
    speed = static_cast<double>(row.downloaded_bytes) * 1000.0 /
            static_cast<double>(row.download_elapsed_ms);
  }
  last_[row.ecu_id] = Sample{row.downloaded_bytes, now_ms};
  return speed;
}

std::string FormatColumns(const std::vector<std::vector<std::string>>& lines) {
  std::vector<size_t> widths;
  for (const auto& line : lines) {
    if (widths.size() < line.size()) widths.resize(line.size(), 0);
    for (size_t i = 0; i < line.size(); ++i) widths[i] = std::max(widths[i], line[i].size());
  }
  std::string out;
  for (const auto& line : lines) {
    std::string text;
    for (size_t i = 0; i < line.size(); ++i) {
      text += line[i];
      if (i + 1 < line.size()) text += std::string(widths[i] - line[i].size() + 2, ' ');
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    out += text;
    out += '\n';
  }
  return out;
}

std::string RenderTable(const std::vector<EcuRow>& rows,
                        const std::map<std::string, double>& speeds, const RenderOptions& options) {
  std::vector<std::vector<std::string>> cells;
  cells.push_back(
      {"ECU", "STATUS", "VERSION", "PHASE", "PROGRESS", "DOWNLOADED", "SPEED", "ETA", "FAILURE"});
  for (const EcuRow& row : rows) {
    std::string version = row.version.empty() ? "-" : row.version;
    if (!row.update_version.empty()) version = StrCat(version, " -> ", row.update_version);
    std::string progress = "-";
    if (row.percent) {
      progress = StrCat(Fixed1(*row.percent), "%");
      if (options.progress_bars) progress = StrCat(ProgressBar(*row.percent, 20), " ", progress);
    }
    std::string downloaded = "-";
    if (row.download_total > 0 || row.downloaded_size > 0) {
      downloaded = StrCat(HumanBytes(row.downloaded_size), " / ", HumanBytes(row.download_total));
    }
    std::string speed = "-";
    std::string eta = "-";
    if (auto it = speeds.find(row.ecu_id); it != speeds.end() && row.downloading) {
      speed = StrCat(HumanBytes(static_cast<uint64_t>(it->second)), "/s");
    }
    // ETA from the uncompressed average rate, as both totals are uncompressed sizes.
    if (row.downloading && row.download_elapsed_ms > 0 && row.downloaded_size > 0 &&
        row.download_total >= row.downloaded_size) {
      const double rate = static_cast<double>(row.downloaded_size) * 1000.0 /
                          static_cast<double>(row.download_elapsed_ms);
      eta = HumanDuration(static_cast<uint64_t>(
          static_cast<double>(row.download_total - row.downloaded_size) / rate));
    }
    cells.push_back({row.ecu_id, OtaClientV2::StatusOta_Name(row.status), version,
                     row.phase.empty() ? "-" : row.phase, progress, downloaded, speed, eta,
                     row.failure_reason.empty() ? "-" : OneLine(row.failure_reason)});
  }
  return FormatColumns(cells);
}

}  // namespace ota::otactl
