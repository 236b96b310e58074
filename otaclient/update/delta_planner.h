// The delta, by content: which of the contents the new image needs are already available
// locally, gathered into the standby's resources dir (<standby>/.ota-resources/<sha256hex>), so
// that only the rest is downloaded.
//
//  1. Resume: files already in the resources dir (an interrupted earlier attempt) count when
//     their name is a needed digest, the size matches and a rehash matches; anything else there
//     (partial downloads, corrupt or unneeded files) is deleted.
//  2. Active slot scan (only when some content is still missing): walks the running slot on
//  `hash_threads` threads (directory fds and
//     getdents, every name opened relative to its parent with O_NOFOLLOW, so no symlink is ever
//     followed; skipping /proc /sys /dev /run /tmp /mnt /media /lost+found and the resources
//     dir, and never leaving the active root's file system, like `find -xdev`: a directory or
//     file of another mount under it is no source), and hashes only regular files whose size equals
//     the size of some still-missing content. The active slot is live and may change under us, so
//     what lands in the resources dir is always bytes that were hashed: a file up to 1 MiB is
//     written from the very buffer that was hashed; a larger one is copied in a second pass that
//     hashes exactly what it writes, and the copy is dropped when that differs. A crash mid-write
//     leaves a file the resume step (1) rehashes and discards.
//     When the active slot carries a complete slot table of its own (/.ota-meta, written when
//     it was updated; slot_table.h), it is not walked: only files the table says hold a
//     still-missing content are opened; one whose inode, size, mtime and ctime still match the
//     table is copied hashing what is written (dropped when that differs), one that changed since
//     is rehashed when its size is wanted (like the walk). Files not in the table (persistent
//     files, anything added since) are then no source. Without such a table: the walk above.
//  Between 1 and 2, for an in-place update (in_place.h): files already on the standby whose
//  content is known (slot table or a rehash) are copied into the resources dir for contents still
//  missing — verified while copying, like the large active files — before the active slot is
//  scanned.
#pragma once

#include <atomic>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/fs/rooted.h"
#include "otaclient/update/content_index.h"
#include "otaclient/update/progress.h"
#include "otaclient/update/slot_table.h"

namespace ota::update {

// The standby's resources dir: as a top-level path (what PrepareStandby keeps, what an image may
// not use) and as a name relative to the slot root.
inline constexpr std::string_view kResourcesPath = "/.ota-resources";
inline constexpr std::string_view kResourcesDir = kResourcesPath.substr(1);
// The image source's intermediates (bundles, compressed forms, slices), kept like the resources
// dir across an interrupted attempt and removed with it after a successful one.
inline constexpr std::string_view kDownloadPath = "/.ota-download";
inline constexpr std::string_view kDownloadDir = kDownloadPath.substr(1);

// A file on the standby believed to hold `sha256` (verified again while it is copied).
struct StandbySource {
  crypto::Sha256Digest sha256{};
  std::string_view path;  // relative to the standby root (views the manifest, which outlives it)
};

struct DeltaOptions {
  int hash_threads = 3;
  const std::atomic<bool>* cancel = nullptr;
  std::span<const StandbySource> standby_sources;  // in-place updates only
  // Read the active slot's own slot table (when complete) instead of walking it (2. above).
  bool use_active_table = true;
};

struct DeltaResult {
  std::vector<uint8_t> present;    // per ContentIndex slot: 1 when resources/<hex> is valid
  std::vector<uint32_t> missing;   // ContentIndex slots to download, ascending
  uint64_t missing_bytes = 0;      // their known sizes summed
  bool active_scanned = false;     // false when nothing was missing before the active-slot scan
  bool active_from_table = false;  // the active slot was read through its slot table, not walked
};

// Counters updated: delta_files_hashed, delta_bytes_hashed, delta_reused, delta_resumed,
// delta_from_standby.
absl::StatusOr<DeltaResult> PlanDelta(const ContentIndex& index, const fs::RootedDir& active,
                                      fs::RootedDir& standby, const DeltaOptions& options,
                                      ProgressCounters& counters);

// "<resources dir>/<hex>" relative to the standby root.
std::string ResourcePath(const crypto::Sha256Digest& digest);

}  // namespace ota::update
