// What `otactl status` shows: one row per ECU from a StatusResponse (ecu_v2, or the v1 view when a
// daemon predates v2), rendered as a table, and the exit code the statuses imply.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "proto/otaclient_v2.pb.h"

namespace ota::otactl {

// Exit codes of otactl (also documented in --help).
inline constexpr int kExitOk = 0;           // every ECU SUCCESS or INITIALIZED / all accepted
inline constexpr int kExitFailed = 1;       // some ECU FAILURE, ROLLBACK_FAILURE or ABORTED
inline constexpr int kExitUsage = 2;        // bad command line or input file
inline constexpr int kExitInProgress = 3;   // some ECU still updating (status without --watch)
inline constexpr int kExitUnreachable = 4;  // daemon unreachable or the call failed

struct EcuRow {
  std::string ecu_id;
  OtaClientV2::StatusOta status = OtaClientV2::INITIALIZED;
  std::string phase;           // UpdatePhase name while updating, "" otherwise
  std::string version;         // firmware running now
  std::string update_version;  // version being installed, while updating
  // Progress of the current phase, 0..100, while updating and totals are known: downloaded
  // bytes while downloading, else bytes of files in place on the standby.
  std::optional<double> percent;
  uint64_t downloaded_size = 0;   // uncompressed bytes downloaded
  uint64_t download_total = 0;    // uncompressed bytes to download
  uint64_t downloaded_bytes = 0;  // network bytes
  uint64_t download_elapsed_ms = 0;
  bool downloading = false;
  std::string failure_reason;
};

std::vector<EcuRow> RowsFromResponse(const OtaClientV2::StatusResponse& response);

// True for statuses that will change by themselves (UPDATING, ROLLBACKING, CLIENT_UPDATING,
// ABORTING).
bool InProgress(OtaClientV2::StatusOta status);

// kExitInProgress while any ECU is in progress, else kExitFailed when any failed, else kExitOk.
int ExitCodeForRows(const std::vector<EcuRow>& rows);

// "0 B", "1023 B", "1.0 KiB", "12.3 MiB", "4.0 GiB".
std::string HumanBytes(uint64_t bytes);
// "42s", "3m02s", "1h05m".
std::string HumanDuration(uint64_t seconds);
// "[#######.............]" for `percent` (clamped to 0..100), `width` cells inside the brackets.
std::string ProgressBar(double percent, int width);

// Download speeds in bytes/s, per ECU: the rate between two consecutive polls when there was an
// earlier one (live speed), else the average over the download phase so far.
class SpeedTracker {
 public:
  // `now_ms` is a monotonic clock reading.
  std::optional<double> Update(const EcuRow& row, uint64_t now_ms);

 private:
  struct Sample {
    uint64_t bytes;
    uint64_t at_ms;
  };
  std::map<std::string, Sample> last_;
};

struct RenderOptions {
  bool progress_bars = false;  // --watch adds a bar per ECU
};

// Left-aligned columns separated by two spaces; the first line is usually a header.
std::string FormatColumns(const std::vector<std::vector<std::string>>& lines);

// The table, one header line plus one line per row. `speeds` holds bytes/s per ecu_id.
std::string RenderTable(const std::vector<EcuRow>& rows,
                        const std::map<std::string, double>& speeds, const RenderOptions& options);

}  // namespace ota::otactl
