#include "otaproxy/cache/cache_index.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <string>
#include <thread>

#include "common/fs/fs.h"

namespace ota::proxy {
namespace {

using std::chrono::milliseconds;

CacheEntry Entry(std::string key, uint64_t size) {
  CacheEntry e;
  e.key = std::move(key);
  e.url = "http://h/" + e.key;
  e.size = size;
  e.file_sha256 = std::string(64, 'b');
  e.file_compression_alg = "zst";
  e.content_type = "application/octet-stream";
  e.content_encoding = "";
  return e;
}

// Rows as another process would see them (a separate connection, WAL committed data only).
int RowsOnDisk(const std::filesystem::path& db_path) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM ota_proxy_cache_v1", -1, &stmt, nullptr);
  int rows = -1;
  if (stmt != nullptr && sqlite3_step(stmt) == SQLITE_ROW) rows = sqlite3_column_int(stmt, 0);
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return rows;
}

std::string JournalMode(const std::filesystem::path& db_path) {
  sqlite3* db = nullptr;
  sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* stmt = nullptr;
  sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, nullptr);
  std::string mode;
  if (stmt != nullptr && sqlite3_step(stmt) == SQLITE_ROW) {
    mode = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return mode;
}

class CacheIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = fs::TempDir::Create("cache-index-test");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = std::make_unique<fs::TempDir>(*std::move(dir));
    db_ = dir_->path() / "index.db";
  }
  std::unique_ptr<fs::TempDir> dir_;
  std::filesystem::path db_;
};

TEST_F(CacheIndexTest, SurvivesReopenWithEveryField) {
  {
    auto index = CacheIndex::Open(db_);
    ASSERT_TRUE(index.ok()) << index.status();
    (*index)->Put(Entry("a", 10));
    (*index)->Put(Entry("b", 20));
    (*index)->Put(Entry("c", 30));
    ASSERT_TRUE((*index)->Remove("b").has_value());
  }  // destructor flushes
  EXPECT_EQ(JournalMode(db_), "wal");
  auto index = CacheIndex::Open(db_);
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_EQ((*index)->size(), 2u);
  EXPECT_EQ((*index)->total_bytes(), 40u);
  std::optional<CacheEntry> a = (*index)->Peek("a");
  ASSERT_TRUE(a.has_value());
  CacheEntry want = Entry("a", 10);
  want.last_access = a->last_access;
  EXPECT_EQ(*a, want);
  EXPECT_GT(a->last_access, 0);
  EXPECT_FALSE((*index)->Peek("b").has_value());
}

TEST_F(CacheIndexTest, WritesAreBatchedNotOneCommitPerChange) {
  auto index = CacheIndex::Open(db_, {.flush_interval = std::chrono::hours(1), .batch_size = 50});
  ASSERT_TRUE(index.ok()) << index.status();
  for (int i = 0; i < 10; ++i) (*index)->Put(Entry("k" + std::to_string(i), 1));
  EXPECT_EQ(RowsOnDisk(db_), 0) << "nothing written before the batch fills or the timer fires";
  ASSERT_TRUE((*index)->Flush().ok());
  EXPECT_EQ(RowsOnDisk(db_), 10);
  // A full batch wakes the writer without waiting for the interval.
  for (int i = 10; i < 60; ++i) (*index)->Put(Entry("k" + std::to_string(i), 1));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (RowsOnDisk(db_) < 60 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_EQ(RowsOnDisk(db_), 60);
}

TEST_F(CacheIndexTest, TimerFlushesASmallBatch) {
  auto index = CacheIndex::Open(db_, {.flush_interval = milliseconds(50), .batch_size = 1000});
  ASSERT_TRUE(index.ok()) << index.status();
  (*index)->Put(Entry("x", 1));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (RowsOnDisk(db_) < 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_EQ(RowsOnDisk(db_), 1);
}

TEST_F(CacheIndexTest, EvictsLeastRecentlyUsedFirstAndKeepsTheNewEntry) {
  auto index = CacheIndex::Open(db_);
  ASSERT_TRUE(index.ok()) << index.status();
  (*index)->Put(Entry("old", 100));
  (*index)->Put(Entry("mid", 100));
  (*index)->Put(Entry("new", 100));
  ASSERT_TRUE((*index)->Lookup("old").has_value());  // now most recently used
  std::vector<CacheEntry> evicted = (*index)->EvictLru(150, "new");
  ASSERT_EQ(evicted.size(), 2u);
  EXPECT_EQ(evicted[0].key, "mid");
  EXPECT_EQ(evicted[1].key, "old");
  EXPECT_EQ((*index)->size(), 1u);
  EXPECT_TRUE((*index)->Peek("new").has_value());
  EXPECT_EQ((*index)->total_bytes(), 100u);
  // Eviction persists too.
  ASSERT_TRUE((*index)->Flush().ok());
  EXPECT_EQ(RowsOnDisk(db_), 1);
}

TEST_F(CacheIndexTest, ReplacingAnEntryKeepsTheTotalRight) {
  auto index = CacheIndex::Open(db_);
  ASSERT_TRUE(index.ok()) << index.status();
  (*index)->Put(Entry("a", 100));
  (*index)->Put(Entry("a", 7));
  EXPECT_EQ((*index)->size(), 1u);
  EXPECT_EQ((*index)->total_bytes(), 7u);
  EXPECT_EQ((*index)->Clear().size(), 1u);
  EXPECT_EQ((*index)->total_bytes(), 0u);
}

TEST_F(CacheIndexTest, CorruptDatabaseIsReplacedByAnEmptyIndex) {
  ASSERT_TRUE(fs::WriteFileAtomic(db_, std::string(8192, 'x')).ok());
  auto index = CacheIndex::Open(db_);
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_EQ((*index)->size(), 0u);
  (*index)->Put(Entry("a", 1));
  ASSERT_TRUE((*index)->Flush().ok());
  EXPECT_EQ(RowsOnDisk(db_), 1);
}

}  // namespace
}  // namespace ota::proxy
