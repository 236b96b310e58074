#include "otaclient/update/content_index.h"

#include <algorithm>

#include "common/util/strings.h"

namespace ota::update {
namespace {

const crypto::Sha256Digest& EmptyDigest() {
  static const crypto::Sha256Digest digest = [] {
    crypto::Sha256Digest d{};
    crypto::FromHex(crypto::kEmptySha256Hex, &d);
    return d;
  }();
  return digest;
}

}  // namespace

bool ContentIndex::IsEmptyContent(const crypto::Sha256Digest& digest) {
  return digest == EmptyDigest();
}

absl::StatusOr<ContentIndex> ContentIndex::Build(const image::Manifest& manifest) {
  ContentIndex index;
  const auto& regulars = manifest.regulars;
  if (regulars.size() > UINT32_MAX) return absl::InvalidArgumentError("too many regular files");

  // Sort entry indices by digest; one pass then yields distinct contents. 4 bytes per entry.
  std::vector<uint32_t> order(regulars.size());
  for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    if (regulars[a].sha256 != regulars[b].sha256) return regulars[a].sha256 < regulars[b].sha256;
    return a < b;
  });

  for (size_t k = 0; k < order.size(); ++k) {
    const image::RegularEntry& e = regulars[order[k]];
    if (e.has_size) index.total_file_bytes_ += e.size;
    if (IsEmptyContent(e.sha256)) {
      if (e.has_size && e.size != 0) {
        return absl::InvalidArgumentError(StrCat("regulars.txt: '", manifest.Str(e.path),
                                                 "' has the empty file's sha256 but size ",
                                                 e.size));
      }
      continue;
    }
    if (e.has_size && e.size == 0) {
      return absl::InvalidArgumentError(StrCat("regulars.txt: '", manifest.Str(e.path),
                                               "' has size 0 but sha256 ",
                                               crypto::ToHex(e.sha256)));
    }
    if (index.contents_.empty() || index.contents_.back().sha256 != e.sha256) {
      NeededContent c;
      c.sha256 = e.sha256;
      c.first_entry = order[k];
      index.contents_.push_back(c);
    }
    NeededContent& c = index.contents_.back();
    if (e.has_size) {
      if (c.size_known && c.size != e.size) {
        return absl::InvalidArgumentError(StrCat(
            "regulars.txt: '", manifest.Str(e.path), "' has size ", e.size, " but '",
            manifest.Str(regulars[c.first_entry].path), "' with the same sha256 has ", c.size));
      }
      c.size = e.size;
      c.size_known = true;
    }
  }
  index.contents_.shrink_to_fit();

  for (const NeededContent& c : index.contents_) {
    if (c.size_known) index.sizes_.push_back(c.size);
  }
  std::sort(index.sizes_.begin(), index.sizes_.end());
  index.size_counts_.clear();
  std::vector<uint64_t> unique_sizes;
  for (uint64_t s : index.sizes_) {
    if (unique_sizes.empty() || unique_sizes.back() != s) {
      unique_sizes.push_back(s);
      index.size_counts_.push_back(0);
    }
    ++index.size_counts_.back();
  }
  index.sizes_ = std::move(unique_sizes);
  return index;
}

std::optional<size_t> ContentIndex::Find(const crypto::Sha256Digest& digest) const {
  auto it = std::lower_bound(
      contents_.begin(), contents_.end(), digest,
      [](const NeededContent& c, const crypto::Sha256Digest& d) { return c.sha256 < d; });
  if (it == contents_.end() || it->sha256 != digest) return std::nullopt;
  return static_cast<size_t>(it - contents_.begin());
}

std::optional<size_t> ContentIndex::SizeSlot(uint64_t size) const {
  auto it = std::lower_bound(sizes_.begin(), sizes_.end(), size);
  if (it == sizes_.end() || *it != size) return std::nullopt;
  return static_cast<size_t>(it - sizes_.begin());
}

}  // namespace ota::update
