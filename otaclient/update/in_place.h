// In-place standby update: when the standby still holds an earlier image (its slot table says
// what was written there, slot_table.h), only what differs from the new image is written.
//
//   PlanInPlace     walks the standby on hash_threads threads (a shared stack of directories;
//                   never following a symlink, staying on its file system, skipping
//                   /.ota-resources, /.ota-download, /.ota-meta and /lost+found at the top) and
//                   compares every entry with the image:
//                     regular   kept when its path, size and content equal the target's: the
//                               sha256 comes from the slot table when the file's inode, size,
//                               mtime and ctime still match what was observed after writing it
//                               (not when re-verifying), else the file is rehashed; a hard-link
//                               group is kept only as a whole (every member right and all of
//                               them one inode with exactly that many links), a plain file only
//                               with one link;
//                     symlink   kept when its target is equal;
//                     special   kept when it is a whiteout (character device 0:0);
//                     directory kept, and walked; ApplyDirectories leaves it alone when its
//                               owner and mode are right and it has no xattrs to set
//                               (keep_dirs), else sets them;
//                   anything not in the image, or of another type, is to be removed (a whole
//                   subtree at once). Standby files of known content become delta sources.
//   ApplyInPlace... RemoveStale removes (deepest first), FixKept sets owner, mode and xattrs of
//                   kept entries that differ; then the usual Apply* write only the rest, each
//                   regular file atomically (temp + rename in its directory, or the resource
//                   renamed over it).
//   RecordSlotTable what is on the standby now, observed right after the apply (before
//                   persistent files, which are then rehashed by the next update).
//   RecordSlotOverlay  the same for only what the update wrote or touched (or rehashed), when
//                   the earlier table is kept (slot_table.h MarkSlotComplete).
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/fs/rooted.h"
#include "common/image/manifest.h"
#include "otaclient/update/delta_planner.h"
#include "otaclient/update/progress.h"
#include "otaclient/update/slot_table.h"

namespace ota::update {

struct InPlaceOptions {
  // The standby's slot table when its state is complete; nullptr: rehash every candidate file.
  const SlotTable* trusted_table = nullptr;
  int hash_threads = 3;
  const std::atomic<bool>* cancel = nullptr;
};

struct InPlacePlan {
  std::vector<uint8_t> keep_regulars;  // per manifest.regulars: 1 = already right
  std::vector<uint8_t> keep_symlinks;  // per manifest.symlinks
  std::vector<uint8_t> keep_specials;  // per manifest.specials
  // Per manifest.dirs: 1 when the standby has it as a directory with the image's owner and mode
  // and the image sets no xattrs on it: nothing for ApplyDirectories to do (the root never).
  std::vector<uint8_t> keep_dirs;
  // Per manifest entry: 1 when a kept entry's owner or mode (as seen by the walk) differs from the
  // image's, or it has xattrs to set; only those are touched by ApplyInPlaceFixups.
  std::vector<uint8_t> fix_regulars;
  std::vector<uint8_t> fix_symlinks;
  std::vector<uint8_t> fix_specials;
  std::vector<std::string> remove;     // standby paths (relative), deepest first
  std::vector<StandbySource> sources;  // standby files of known content
  // Per manifest.regulars: 1 when the trusted table vouched for the file (unchanged since it was
  // recorded); the file is left untouched when also kept and not fixed.
  std::vector<uint8_t> vouched_regulars;
  uint64_t rehashed = 0;    // files hashed to decide
  uint64_t table_hits = 0;  // files whose content the trusted table vouched for
};

absl::StatusOr<InPlacePlan> PlanInPlace(const image::Manifest& manifest,
                                        const fs::RootedDir& standby, const InPlaceOptions& options,
                                        ProgressCounters& counters);

// Removes plan.remove (deepest first), then fixes owner/mode/xattrs of the kept entries the plan
// found differing (fix_*; no further stat of the others). Counts kept regular files as processed.
absl::Status ApplyInPlaceFixups(const image::Manifest& manifest, const InPlacePlan& plan,
                                fs::RootedDir& standby, ProgressCounters& counters);

// The slot table of the image's regular files as they are on the standby now.
absl::StatusOr<SlotTable> RecordSlotTable(const image::Manifest& manifest,
                                          const fs::RootedDir& standby, int threads);

// The overlay to keep with the earlier table: an entry, observed now, for every regular file of
// the image the update wrote, fixed or rehashed (not vouched for by the table, or not kept, or
// fixed), and the entries of `old_overlay` for the image's other paths (left untouched).
absl::StatusOr<SlotTable> RecordSlotOverlay(const image::Manifest& manifest,
                                            const InPlacePlan& plan, const fs::RootedDir& standby,
                                            const SlotTable& old_overlay, int threads);

// fstrim on `mount_point`, bounded (upstream: 30 s); a failure is only a warning.
void TrimStandby(const std::filesystem::path& mount_point);

}  // namespace ota::update
