// The cache index: which entries exist, their size, response headers and recency. The live copy
// is in memory (an LRU list); SQLite (WAL) is the durable copy, written by a background thread
// in batched transactions (every `flush_interval` or `batch_size` pending changes, never one
// commit per request). A crash loses at most the last batch of recency updates or new entries;
// new entries lost that way leave orphan files that CacheStore removes on the next start.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"

struct sqlite3;

namespace ota::proxy {

struct CacheEntry {
  std::string key;  // file name under the cache's data dir
  std::string url;  // the URL it was first fetched as (informational)
  uint64_t size = 0;
  int64_t last_access = 0;  // unix seconds
  std::string file_sha256;
  std::string file_compression_alg;
  std::string content_type;
  std::string content_encoding;

  bool operator==(const CacheEntry&) const = default;
};

struct CacheIndexOptions {
  std::chrono::milliseconds flush_interval{1000};
  size_t batch_size = 256;
};

class CacheIndex {
 public:
  // Opens or creates the database (a corrupt or foreign file is replaced by an empty index).
  static absl::StatusOr<std::unique_ptr<CacheIndex>> Open(const std::filesystem::path& db_path,
                                                          CacheIndexOptions options = {});
  ~CacheIndex();  // flushes
  CacheIndex(const CacheIndex&) = delete;
  CacheIndex& operator=(const CacheIndex&) = delete;

  // The entry for `key`, marked most recently used (persisted with the next batch).
  std::optional<CacheEntry> Lookup(const std::string& key);
  // Without touching recency.
  std::optional<CacheEntry> Peek(const std::string& key) const;
  // Inserts or replaces; the entry becomes most recently used.
  void Put(CacheEntry entry);
  // Removes and returns the entry (nullopt if absent).
  std::optional<CacheEntry> Remove(const std::string& key);
  // Removes least recently used entries until total_bytes() <= max_bytes, never touching `keep`
  // (the entry just committed); returns what was removed, oldest first.
  std::vector<CacheEntry> EvictLru(uint64_t max_bytes, const std::string& keep = "");
  // Every entry, least recently used first.
  std::vector<CacheEntry> Snapshot() const;
  std::vector<CacheEntry> Clear();

  uint64_t total_bytes() const;
  size_t size() const;
  // Changes not yet committed to the database (including a flush in progress).
  size_t pending() const;

  // Writes pending changes now (also done by the background thread and the destructor).
  absl::Status Flush();

 private:
  struct Slot {
    CacheEntry entry;
    std::list<std::string>::iterator lru_pos;
  };
  CacheIndex(sqlite3* db, CacheIndexOptions options);
  absl::Status LoadAll();
  void MarkDirtyLocked(const std::string& key);
  void WriterLoop();

  sqlite3* const db_;
  const CacheIndexOptions options_;

  mutable std::mutex mu_;
  std::unordered_map<std::string, Slot> entries_;
  std::list<std::string> lru_;  // front = least recently used
  uint64_t total_bytes_ = 0;
  // Keys changed since the last flush: present in entries_ → upsert, absent → delete.
  std::unordered_map<std::string, bool> dirty_;
  size_t flushing_ = 0;  // changes taken by a flush that has not committed yet

  std::mutex db_mu_;  // serialises flushes
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread writer_;
};

}  // namespace ota::proxy
