// Every distinct file content (sha256) the new image needs, sorted by digest: the unit of the
// delta and of downloads. Compact on purpose (about 56 bytes per distinct content; a 300k-entry
// image needs ~17 MB here): no strings, paths stay in the Manifest's arena.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "common/crypto/sha256.h"
#include "common/image/manifest.h"

namespace ota::update {

struct NeededContent {
  crypto::Sha256Digest sha256{};
  uint64_t size = 0;         // valid when size_known
  uint32_t first_entry = 0;  // manifest.regulars index of the first file with this content
  bool size_known = false;
};

class ContentIndex {
 public:
  // Indexes the regular files of `manifest`. The empty content (sha256 of "") and contents
  // inlined in the image are not indexed: those files are written directly. kInvalidArgument when
  // two entries give one digest two different sizes, or an entry says size 0 with a non-empty
  // digest. `skip` (empty, or one flag per manifest.regulars entry): entries already right on the
  // standby (in-place update) need no content; total_file_bytes still counts them.
  static absl::StatusOr<ContentIndex> Build(const image::Manifest& manifest,
                                            std::span<const uint8_t> skip = {});

  size_t size() const { return contents_.size(); }
  const NeededContent& operator[](size_t i) const { return contents_[i]; }
  std::optional<size_t> Find(const crypto::Sha256Digest& digest) const;

  // Sizes with at least one needed content of known size, for the delta's size filter.
  // Returns the slot of `size` in that set, or nullopt when no needed content has that size.
  std::optional<size_t> SizeSlot(uint64_t size) const;
  size_t size_slots() const { return sizes_.size(); }
  // How many needed contents have the size of each slot.
  uint32_t contents_with_size(size_t slot) const { return size_counts_[slot]; }

  // Sum of the sizes of all regular entries (what the standby will hold), and their count.
  uint64_t total_file_bytes() const { return total_file_bytes_; }

  static bool IsEmptyContent(const crypto::Sha256Digest& digest);

 private:
  std::vector<NeededContent> contents_;
  std::vector<uint64_t> sizes_;        // sorted, unique
  std::vector<uint32_t> size_counts_;  // parallel to sizes_
  uint64_t total_file_bytes_ = 0;
};

}  // namespace ota::update
