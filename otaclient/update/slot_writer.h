// Writes the new image's tree onto the standby slot, every operation confined to the standby by
// fs::RootedDir (a symlink already on the standby is never followed out of it):
//   directories  mkdir -p, chown, chmod (owner first: chown clears setuid/setgid), xattrs
//   symlinks     created (replacing), lchown, xattrs; their mode means nothing on Linux
//   specials     overlayfs whiteouts (character device 0:0): mknod, chown, chmod, xattrs
//   regulars     content from <standby>/.ota-resources/<hex> (see delta_planner.h): copied for
//                every file that needs it except the last, which takes the resource by rename;
//                empty files and contents inlined in the image are written directly; xattrs
//                after owner and mode (chown drops security.capability); hard-link groups (nlink >
//                1, keyed by the build host's inode, else by sha256, as the existing client does)
//                are written once and the other paths link() to it; chown then chmod.
#pragma once

#include <atomic>
#include <cstdint>
#include <span>

#include "absl/status/status.h"
#include "common/fs/rooted.h"
#include "common/image/manifest.h"
#include "otaclient/update/content_index.h"
#include "otaclient/update/progress.h"

namespace ota::update {

struct ApplyOptions {
  int threads = 4;
  const std::atomic<bool>* cancel = nullptr;
  // In-place update (in_place.h): one flag per manifest.regulars entry, 1 = already right on
  // the standby, not written (a hard-link group is skipped as a whole, by its first member).
  std::span<const uint8_t> skip_regulars;
};

// `skip` (empty, or one flag per entry): entries already right on the standby (in place).
absl::Status ApplyDirectories(const image::Manifest& manifest, fs::RootedDir& standby,
                              std::span<const uint8_t> skip = {});
absl::Status ApplySymlinks(const image::Manifest& manifest, fs::RootedDir& standby,
                           std::span<const uint8_t> skip = {});
absl::Status ApplySpecials(const image::Manifest& manifest, fs::RootedDir& standby,
                           std::span<const uint8_t> skip = {});

// `downloaded` (per ContentIndex slot, may be empty) only decides the v1 progress bucket:
// content fetched over the network counts as "download", local content as "copy".
// Every needed content must be present in the resources dir.
absl::Status ApplyRegulars(const image::Manifest& manifest, const ContentIndex& index,
                           std::span<const uint8_t> downloaded, fs::RootedDir& standby,
                           const ApplyOptions& options, ProgressCounters& counters);

}  // namespace ota::update
