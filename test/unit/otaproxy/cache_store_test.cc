#include "otaproxy/cache/cache_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "common/fs/fs.h"

namespace ota::proxy {
namespace {

namespace fsys = std::filesystem;

// File-system percentages off, so the host's disk use does not matter.
constexpr CacheLimits kNoFsLimits{.soft_percent = 100, .hard_percent = 100};

class CacheStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = fs::TempDir::Create("cache-store-test");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = std::make_unique<fs::TempDir>(*std::move(dir));
    cache_ = dir_->path() / "cache";
  }

  // Writes `content` to a temp file of the store and commits it as `key`.
  absl::StatusOr<bool> Add(CacheStore& store, const std::string& key, const std::string& content) {
    absl::StatusOr<TempFile> temp = store.CreateTemp();
    if (!temp.ok()) return temp.status();
    absl::Status written = fs::WriteAll(temp->fd.get(), content.data(), content.size(), "temp");
    if (!written.ok()) return written;
    CacheEntry entry;
    entry.key = key;
    entry.size = content.size();
    return store.Commit(temp->path, entry);
  }

  std::unique_ptr<fs::TempDir> dir_;
  fsys::path cache_;
};

TEST_F(CacheStoreTest, CommittedEntryIsServedAndSurvivesRestart) {
  {
    auto store = CacheStore::Open(cache_, kNoFsLimits);
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_EQ(*Add(**store, "abc", "hello"), true);
    std::optional<OpenEntry> hit = (*store)->Open("abc");
    ASSERT_TRUE(hit.has_value());
    EXPECT_EQ(hit->entry.size, 5u);
    EXPECT_FALSE((*store)->Open("other").has_value());
  }
  auto store = CacheStore::Open(cache_, kNoFsLimits);
  ASSERT_TRUE(store.ok()) << store.status();
  std::optional<OpenEntry> hit = (*store)->Open("abc");
  ASSERT_TRUE(hit.has_value());
  char buf[8] = {};
  EXPECT_EQ(::pread(hit->fd.get(), buf, sizeof(buf), 0), 5);
  EXPECT_EQ(std::string(buf, 5), "hello");
}

TEST_F(CacheStoreTest, SecondProcessOnTheSameDirIsRefused) {
  auto first = CacheStore::Open(cache_, kNoFsLimits);
  ASSERT_TRUE(first.ok()) << first.status();
  // flock locks belong to the open file description: a second open in this process conflicts
  // just like another process would.
  auto second = CacheStore::Open(cache_, kNoFsLimits);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(CacheStoreTest, StartUpRemovesTempsOrphansAndRowsWithoutFiles) {
  {
    auto store = CacheStore::Open(cache_, kNoFsLimits);
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_EQ(*Add(**store, "keep", "1234"), true);
    ASSERT_EQ(*Add(**store, "vanishes", "xx"), true);
    ASSERT_EQ(*Add(**store, "resized", "xyz"), true);
    ASSERT_TRUE((*store)->CreateTemp().ok());  // an interrupted download
  }
  fsys::remove(cache_ / "data" / "vanishes");
  ASSERT_TRUE(fs::WriteFileAtomic(cache_ / "data" / "resized", "longer than before").ok());
  ASSERT_TRUE(fs::WriteFileAtomic(cache_ / "data" / "orphan", "no row").ok());
  auto store = CacheStore::Open(cache_, kNoFsLimits);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->entries(), 1u);
  EXPECT_EQ((*store)->total_bytes(), 4u);
  EXPECT_TRUE((*store)->Open("keep").has_value());
  EXPECT_FALSE(fsys::exists(cache_ / "data" / "orphan"));
  EXPECT_FALSE(fsys::exists(cache_ / "data" / "resized"));
  EXPECT_TRUE(fsys::is_empty(cache_ / "tmp"));
}

TEST_F(CacheStoreTest, SoftLimitEvictsLeastRecentlyUsed) {
  auto store = CacheStore::Open(
      cache_,
      {.soft_limit_bytes = 30, .hard_limit_bytes = 100, .soft_percent = 100, .hard_percent = 100});
  ASSERT_TRUE(store.ok()) << store.status();
  const std::string ten(10, 'x');
  ASSERT_EQ(*Add(**store, "a", ten), true);
  ASSERT_EQ(*Add(**store, "b", ten), true);
  ASSERT_EQ(*Add(**store, "c", ten), true);
  ASSERT_TRUE((*store)->Open("a").has_value());  // a is now the most recent
  ASSERT_EQ(*Add(**store, "d", ten), true);      // over 30: b goes
  EXPECT_EQ((*store)->total_bytes(), 30u);
  EXPECT_FALSE((*store)->Open("b").has_value());
  EXPECT_FALSE(fsys::exists(cache_ / "data" / "b"));
  EXPECT_TRUE((*store)->Open("a").has_value());
  EXPECT_TRUE((*store)->Open("c").has_value());
  EXPECT_TRUE((*store)->Open("d").has_value());
  EXPECT_EQ((*store)->evictions(), 1u);
}

TEST_F(CacheStoreTest, HardLimitRefusesWhatDoesNotFit) {
  auto store = CacheStore::Open(
      cache_,
      {.soft_limit_bytes = 10, .hard_limit_bytes = 20, .soft_percent = 100, .hard_percent = 100});
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_TRUE((*store)->CachingAllowed());
  EXPECT_EQ(*Add(**store, "big", std::string(21, 'x')), false);
  EXPECT_FALSE((*store)->Open("big").has_value());
  EXPECT_TRUE(fsys::is_empty(cache_ / "tmp"));
  EXPECT_TRUE(fsys::is_empty(cache_ / "data"));
}

TEST_F(CacheStoreTest, FileSystemHardPercentStopsCaching) {
  // Any real file system is at least 1% used.
  auto store = CacheStore::Open(cache_, {.soft_percent = 1, .hard_percent = 1});
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_FALSE((*store)->CachingAllowed());
  EXPECT_EQ(*Add(**store, "a", "x"), false);
}

TEST_F(CacheStoreTest, PurgeRemovesEverything) {
  auto store = CacheStore::Open(cache_, kNoFsLimits);
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_EQ(*Add(**store, "a", "1"), true);
  ASSERT_EQ(*Add(**store, "b", "2"), true);
  EXPECT_EQ((*store)->Purge(), 2u);
  EXPECT_EQ((*store)->entries(), 0u);
  EXPECT_TRUE(fsys::is_empty(cache_ / "data"));
  EXPECT_FALSE((*store)->Open("a").has_value());
  ASSERT_EQ(*Add(**store, "c", "3"), true);  // the cache keeps working
  EXPECT_TRUE((*store)->Open("c").has_value());
  store->reset();  // joins the background remover
  EXPECT_TRUE(!fsys::exists(cache_ / "trash") || fsys::is_empty(cache_ / "trash"));
  auto reopened = CacheStore::Open(cache_, kNoFsLimits);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ((*reopened)->entries(), 1u);
}

TEST_F(CacheStoreTest, KeysAreSafeFileNames) {
  EXPECT_TRUE(IsValidCacheKey(std::string(64, 'a')));
  EXPECT_TRUE(IsValidCacheKey(std::string(64, 'a') + ".zst"));
  EXPECT_TRUE(IsValidCacheKey("url_" + std::string(64, '0')));
  EXPECT_FALSE(IsValidCacheKey(""));
  EXPECT_FALSE(IsValidCacheKey(".."));
  EXPECT_FALSE(IsValidCacheKey("../x"));
  EXPECT_FALSE(IsValidCacheKey("a/b"));
  EXPECT_FALSE(IsValidCacheKey("A"));
  EXPECT_FALSE(IsValidCacheKey(std::string(129, 'a')));
}

}  // namespace
}  // namespace ota::proxy
