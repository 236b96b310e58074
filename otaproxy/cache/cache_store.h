// The on-disk cache: committed entries in <dir>/data/<key>, in-flight downloads in <dir>/tmp/,
// the index in <dir>/index.db (see cache_index.h), and <dir>/lock, flock()ed by the one process
// using the directory.
//
// Start-up reconciles the three: tmp/ is emptied (an interrupted download is never an entry),
// rows whose file vanished or has the wrong size are dropped, files without a row are deleted.
//
// Disk limits, checked when a download starts and when it is committed:
//  - soft: cache bytes > soft_limit_bytes, or the file system holding the cache more than
//    soft_percent full → least recently used entries are evicted until both are below again;
//  - hard: cache bytes + the new entry > hard_limit_bytes, or the file system at least
//    hard_percent full → nothing new is cached (requests are still proxied, existing entries
//    still served).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "common/fs/fs.h"
#include "otaproxy/cache/cache_index.h"

namespace ota::proxy {

struct CacheLimits {
  uint64_t soft_limit_bytes = 0;  // 0 = no byte limit
  uint64_t hard_limit_bytes = 0;  // 0 = no byte limit
  int soft_percent = 75;          // file-system use; 100 = off
  int hard_percent = 80;
};

struct OpenEntry {
  CacheEntry entry;
  fs::UniqueFd fd;
};

struct TempFile {
  std::filesystem::path path;
  fs::UniqueFd fd;  // O_RDWR
};

class CacheStore {
 public:
  // Creates `dir` if needed; fails (kFailedPrecondition) when another process holds its lock.
  static absl::StatusOr<std::unique_ptr<CacheStore>> Open(const std::filesystem::path& dir,
                                                          CacheLimits limits,
                                                          CacheIndexOptions index_options = {});
  ~CacheStore();

  // A committed entry opened for reading (marked most recently used); nullopt on a miss. A row
  // whose file has gone is dropped here.
  std::optional<OpenEntry> Open(const std::string& key);
  // Drops an entry (retry_caching, purge).
  void Drop(const std::string& key);
  // Removes every entry; returns how many there were. The files are moved aside at once
  // (<dir>/trash/) and deleted by a background thread, so neither start-up (--init-cache) nor
  // the purge request waits for a large cache to be unlinked.
  size_t Purge();

  // False while the hard limit is reached (then requests are relayed without caching).
  bool CachingAllowed();
  absl::StatusOr<TempFile> CreateTemp();
  // Moves a complete, verified temp file into the cache as `entry` (entry.size must be its size)
  // and evicts down to the soft limit. Returns false (and deletes the temp file) when the hard
  // limit does not leave room for it.
  absl::StatusOr<bool> Commit(const std::filesystem::path& temp, CacheEntry entry);
  // Removes a temp file of a failed download.
  void DiscardTemp(const std::filesystem::path& temp);

  uint64_t total_bytes() const { return index_->total_bytes(); }
  size_t entries() const { return index_->size(); }
  size_t index_pending() const { return index_->pending(); }
  uint64_t evictions() const { return evictions_.load(); }
  std::vector<CacheEntry> Snapshot() const { return index_->Snapshot(); }
  const std::filesystem::path& dir() const { return dir_; }
  absl::Status Flush() { return index_->Flush(); }

 private:
  CacheStore(std::filesystem::path dir, CacheLimits limits, fs::UniqueFd lock_fd,
             std::unique_ptr<CacheIndex> index);
  void Reconcile();
  // Percentage of the cache's file system in use, re-read at most once a second.
  int FsUsedPercent();
  void EvictToSoftLimit(const std::string& keep);
  void UnlinkEntryFile(const std::string& key);

  const std::filesystem::path dir_;
  const std::filesystem::path data_dir_;
  const std::filesystem::path tmp_dir_;
  const CacheLimits limits_;
  fs::UniqueFd lock_fd_;
  std::unique_ptr<CacheIndex> index_;
  std::mutex commit_mu_;  // commit + eviction are one step
  std::atomic<uint64_t> temp_counter_{0};
  std::atomic<uint64_t> evictions_{0};
  std::mutex fs_mu_;
  std::chrono::steady_clock::time_point fs_checked_{};
  int fs_percent_ = 0;
  std::atomic<uint64_t> trash_counter_{0};
  std::jthread trash_remover_;  // last member: joined before anything else is destroyed
};

// A cache key is used as a file name: [0-9a-z._-], 1..128 chars, not starting with '.'.
bool IsValidCacheKey(std::string_view key);

}  // namespace ota::proxy
