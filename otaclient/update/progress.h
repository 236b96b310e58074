// Live progress counters of one update session. Writers (delta, download, apply threads) bump
// atomics; Snapshot() reads them without locks, so Status never waits for the update.
#pragma once

#include <atomic>
#include <cstdint>

#include "otaclient/update/status_snapshot.h"

namespace ota::update {

struct ProgressCounters {
  std::atomic<uint64_t> total_files_num{0};
  std::atomic<uint64_t> total_files_size{0};
  std::atomic<uint64_t> total_download_files_num{0};
  std::atomic<uint64_t> total_download_files_size{0};
  std::atomic<uint64_t> downloaded_files_num{0};
  std::atomic<uint64_t> downloaded_files_size{0};
  std::atomic<uint64_t> downloaded_bytes{0};
  std::atomic<uint64_t> downloading_errors{0};
  std::atomic<uint64_t> processed_files_num{0};
  std::atomic<uint64_t> processed_files_size{0};
  std::atomic<uint64_t> files_copy{0}, size_copy{0};
  std::atomic<uint64_t> files_link{0}, size_link{0};
  std::atomic<uint64_t> files_download{0}, size_download{0};
  std::atomic<uint64_t> copy_elapsed_ns{0};
  std::atomic<uint64_t> link_elapsed_ns{0};
  // Delta planner statistics (logged, asserted by tests; not on the wire).
  std::atomic<uint64_t> delta_files_hashed{0};
  std::atomic<uint64_t> delta_bytes_hashed{0};
  std::atomic<uint64_t> delta_reused{0};        // contents copied from the active slot
  std::atomic<uint64_t> delta_resumed{0};       // contents already valid in the resources dir
  std::atomic<uint64_t> delta_from_standby{0};  // contents copied from the standby's old files
  // In-place update (in_place.h): whether the standby was written in place, and what it found.
  std::atomic<bool> in_place{false};
  std::atomic<uint64_t> in_place_kept{0};      // regular files already right, left untouched
  std::atomic<uint64_t> in_place_removed{0};   // standby entries not in the image, removed
  std::atomic<uint64_t> in_place_rehashed{0};  // standby files hashed by the in-place plan
  // The image beside its regular files (for the metrics record; not on the wire).
  std::atomic<uint64_t> total_directories_num{0};
  std::atomic<uint64_t> total_symlinks_num{0};
  std::atomic<OtaImageFormat> image_format{OtaImageFormat::kUnknown};

  void Reset();
  // Copies the counters into `out` (phase, timestamps and elapsed times are left alone).
  void FillCounters(Progress& out) const;

  // How a regular file got onto the standby (the v1 view's three buckets).
  enum class Op { kCopy, kLink, kDownload };
  void AddProcessed(Op op, uint64_t size, uint64_t elapsed_ns);
};

}  // namespace ota::update
