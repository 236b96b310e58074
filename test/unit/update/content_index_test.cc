// ContentIndex lookups where digests share long prefixes: the index sorts and searches by an
// 8-byte prefix first, so equal prefixes must fall back to the whole digest.
#include "otaclient/update/content_index.h"

#include <algorithm>
#include <random>
#include <vector>

#include "test/unit/update/tree_util.h"

namespace ota::update {
namespace {

crypto::Sha256Digest MakeDigest(uint8_t fill,
                                std::initializer_list<std::pair<int, uint8_t>> bytes) {
  crypto::Sha256Digest d;
  d.fill(fill);
  for (auto [pos, value] : bytes) d[static_cast<size_t>(pos)] = value;
  return d;
}

image::RegularEntry Entry(image::Manifest& m, const crypto::Sha256Digest& digest, uint64_t size,
                          int n) {
  image::RegularEntry e;
  e.sha256 = digest;
  e.size = size;
  e.has_size = true;
  e.path = m.Intern("/f" + std::to_string(n));
  return e;
}

TEST(ContentIndexPrefixTest, FindsEveryDigestAmongSharedPrefixes) {
  // Digests that agree on the first 8 bytes (and some on 31 of 32), differ in the first byte's
  // top bit (prefix order vs signedness), or sit at the extremes.
  const std::vector<crypto::Sha256Digest> digests = {
      MakeDigest(0x00, {{31, 0x01}}), MakeDigest(0x00, {{31, 0x02}}),
      MakeDigest(0x00, {{8, 0x01}}),  MakeDigest(0x00, {{7, 0x01}}),
      MakeDigest(0x7f, {}),           MakeDigest(0x80, {}),
      MakeDigest(0x80, {{8, 0x00}}),  MakeDigest(0x80, {{31, 0x7f}}),
      MakeDigest(0xff, {{31, 0xfe}}), MakeDigest(0xff, {}),
  };
  image::Manifest m;
  int n = 0;
  // Each content twice (hard links or copies), in shuffled order.
  std::vector<image::RegularEntry> entries;
  for (size_t i = 0; i < digests.size(); ++i) {
    entries.push_back(Entry(m, digests[i], 100 + i, n++));
    entries.push_back(Entry(m, digests[i], 100 + i, n++));
  }
  std::mt19937 rng(7);
  std::shuffle(entries.begin(), entries.end(), rng);
  m.regulars = entries;

  auto index = ContentIndex::Build(m);
  ASSERT_TRUE(index.ok()) << index.status();
  ASSERT_EQ(index->size(), digests.size());
  for (size_t i = 0; i + 1 < index->size(); ++i) {
    EXPECT_LT((*index)[i].sha256, (*index)[i + 1].sha256) << "not sorted at " << i;
  }
  for (size_t i = 0; i < digests.size(); ++i) {
    auto slot = index->Find(digests[i]);
    ASSERT_TRUE(slot.has_value()) << crypto::ToHex(digests[i]);
    EXPECT_EQ((*index)[*slot].sha256, digests[i]);
    EXPECT_EQ((*index)[*slot].size, 100 + i);
    // first_entry is the lowest manifest index holding this content.
    uint32_t lowest = UINT32_MAX;
    for (uint32_t e = 0; e < m.regulars.size(); ++e) {
      if (m.regulars[e].sha256 == digests[i]) lowest = std::min(lowest, e);
    }
    EXPECT_EQ((*index)[*slot].first_entry, lowest);
  }
  EXPECT_FALSE(index->Find(MakeDigest(0x00, {{31, 0x03}})).has_value());
  EXPECT_FALSE(index->Find(MakeDigest(0x80, {{30, 0x01}})).has_value());
  EXPECT_FALSE(index->Find(MakeDigest(0x00, {})).has_value());
  EXPECT_EQ(index->size_slots(), digests.size());
}

TEST(ContentIndexPrefixTest, ConflictingSizesBehindASharedPrefixAreRejected) {
  image::Manifest m;
  m.regulars.push_back(Entry(m, MakeDigest(0x11, {{31, 0x01}}), 10, 0));
  m.regulars.push_back(Entry(m, MakeDigest(0x11, {{31, 0x02}}), 20, 1));
  m.regulars.push_back(Entry(m, MakeDigest(0x11, {{31, 0x01}}), 11, 2));
  auto index = ContentIndex::Build(m);
  EXPECT_EQ(index.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(index.status().message().find("/f2"), std::string_view::npos) << index.status();
}

}  // namespace
}  // namespace ota::update
