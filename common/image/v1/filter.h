// rs_manifest.filter_applied of the v1 resource table: NULL for a leaf (the resource is stored as
// blob blobs/sha256/<hex>), else "<code>:<msgpack array>" (split at the first colon):
//   b  [bundle_id, offset, len]   bytes [offset, offset+len) of resource bundle_id
//   c  [compressed_id, "zstd"]    resource compressed_id holds this resource zstd-compressed
//   s  [id0, id1, ...]            the concatenation of those resources, in order; ids may repeat
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace ota::image::v1 {

struct ResourceFilter {
  enum class Kind { kLeaf, kBundle, kCompressed, kSliced };
  Kind kind = Kind::kLeaf;
  int64_t ref = 0;      // bundle or compressed resource id
  uint64_t offset = 0;  // bundle member
  uint64_t length = 0;  // bundle member
  std::vector<int64_t> slices;
};

// `blob` is the column's value; nullopt for SQL NULL. kInvalidArgument naming the problem for an
// unknown code, a compression other than zstd, an empty slice list, ids beyond int64, trailing
// bytes, or more than 1 MiB (tier4's decoder limit).
absl::StatusOr<ResourceFilter> ParseResourceFilter(std::optional<std::string_view> blob);

// The builder's side: the exact bytes tier4's library writes.
std::string EncodeBundleFilter(int64_t bundle_id, uint64_t offset, uint64_t length);
std::string EncodeCompressFilter(int64_t compressed_id);
std::string EncodeSliceFilter(const std::vector<int64_t>& ids);

}  // namespace ota::image::v1
