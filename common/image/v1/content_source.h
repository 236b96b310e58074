// Where each content of a v1 image comes from (reference/ota-image-v1.md §11, §13): the resource
// table maps a content's digest to a leaf blob, a member of a bundle, a zstd-compressed form or a
// list of slices, recursively. Fetch plans the whole missing set first, so every blob is fetched
// once however many contents need it, and not at all when none does:
//   - a leaf content: its blob straight into <resources>/<hex>;
//   - a content compressed as a leaf blob: that blob, zstd-decoded while it streams;
//   - bundles, slices and compressed intermediates: materialised once in the work dir
//     (<hex>, verified by size and sha256), then members are cut out, slices joined (ids may
//     repeat), compressed forms decoded — each result verified against its own digest.
// Verified intermediates stay in the work dir across a failed attempt and are reused (rehashed)
// by the next; the work dir is removed when Fetch succeeds.
#pragma once

#include <filesystem>
#include <memory>

#include "absl/status/statusor.h"
#include "common/fs/fs.h"
#include "common/image/image_reader.h"
#include "common/image/v1/resource_table.h"

namespace ota::image::v1 {

std::unique_ptr<ContentSource> MakeV1ContentSource(std::string base_url, fs::TempDir tables_dir,
                                                   ResourceTable table);

}  // namespace ota::image::v1
