#include "otaproxy/cache/cache_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <unordered_set>

#include "common/log/log.h"
#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::proxy {
namespace fsys = std::filesystem;

bool IsValidCacheKey(std::string_view key) {
  if (key.empty() || key.size() > 128 || key.front() == '.') return false;
  for (char c : key) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '.' || c == '_' || c == '-')) {
      return false;
    }
  }
  return true;
}

namespace {

absl::Status MakeDir(const fsys::path& dir) {
  std::error_code ec;
  fsys::create_directories(dir, ec);
  if (ec) return ErrnoStatus(ec.value(), StrCat("mkdir ", dir.string()));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<CacheStore>> CacheStore::Open(const fsys::path& dir,
                                                             CacheLimits limits,
                                                             CacheIndexOptions index_options) {
  OTA_RETURN_IF_ERROR(MakeDir(dir / "data"));
  OTA_RETURN_IF_ERROR(MakeDir(dir / "tmp"));
  const fsys::path lock_path = dir / "lock";
  fs::UniqueFd lock_fd(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!lock_fd.valid()) return ErrnoStatus(errno, StrCat("open ", lock_path.string()));
  if (::flock(lock_fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return absl::FailedPreconditionError(StrCat("cache dir ", dir.string(),
                                                  " is in use by another otaproxy (",
                                                  lock_path.string(), " is locked)"));
    }
    return ErrnoStatus(errno, StrCat("flock ", lock_path.string()));
  }
  OTA_ASSIGN_OR_RETURN(std::unique_ptr<CacheIndex> index,
                       CacheIndex::Open(dir / "index.db", index_options));
  std::unique_ptr<CacheStore> store(
      new CacheStore(dir, limits, std::move(lock_fd), std::move(index)));
  store->Reconcile();
  return store;
}

CacheStore::CacheStore(fsys::path dir, CacheLimits limits, fs::UniqueFd lock_fd,
                       std::unique_ptr<CacheIndex> index)
    : dir_(std::move(dir)),
      data_dir_(dir_ / "data"),
      tmp_dir_(dir_ / "tmp"),
      limits_(limits),
      lock_fd_(std::move(lock_fd)),
      index_(std::move(index)) {}

CacheStore::~CacheStore() {
  if (absl::Status status = index_->Flush(); !status.ok()) {
    log::Error("cache index flush failed", {{"error", std::string(status.message())}});
  }
}

void CacheStore::Reconcile() {
  std::error_code ec;
  fsys::remove_all(dir_ / "trash", ec);  // left by a purge that did not finish
  size_t temps = 0;
  for (const auto& item : fsys::directory_iterator(tmp_dir_, ec)) {
    fsys::remove_all(item.path(), ec);
    ++temps;
  }
  size_t dropped = 0;
  std::unordered_set<std::string> keys;
  for (const CacheEntry& entry : index_->Snapshot()) {
    struct stat st {};
    const fsys::path file = data_dir_ / entry.key;
    if (!IsValidCacheKey(entry.key) || ::stat(file.c_str(), &st) != 0 || !S_ISREG(st.st_mode) ||
        static_cast<uint64_t>(st.st_size) != entry.size) {
      index_->Remove(entry.key);
      ++dropped;
      continue;
    }
    keys.insert(entry.key);
  }
  size_t orphans = 0;
  for (const auto& item : fsys::directory_iterator(data_dir_, ec)) {
    if (keys.count(item.path().filename().string()) == 0) {
      fsys::remove_all(item.path(), ec);
      ++orphans;
    }
  }
  (void)index_->Flush();
  log::Info("cache opened", {{"dir", dir_.string()},
                             {"entries", std::to_string(index_->size())},
                             {"bytes", std::to_string(index_->total_bytes())},
                             {"temp_files_removed", std::to_string(temps)},
                             {"rows_dropped", std::to_string(dropped)},
                             {"orphan_files_removed", std::to_string(orphans)}});
  EvictToSoftLimit("");
}

std::optional<OpenEntry> CacheStore::Open(const std::string& key) {
  std::optional<CacheEntry> entry = index_->Lookup(key);
  if (!entry) return std::nullopt;
  const fsys::path file = data_dir_ / key;
  fs::UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st {};
  if (!fd.valid() || ::fstat(fd.get(), &st) != 0 ||
      static_cast<uint64_t>(st.st_size) != entry->size) {
    log::Warning("cache entry file missing or resized, dropped", {{"key", key}});
    index_->Remove(key);
    return std::nullopt;
  }
  return OpenEntry{std::move(*entry), std::move(fd)};
}

void CacheStore::UnlinkEntryFile(const std::string& key) {
  const fsys::path file = data_dir_ / key;
  if (::unlink(file.c_str()) != 0 && errno != ENOENT) {
    log::Warning("cannot remove cache file",
                 {{"path", file.string()}, {"error", ErrnoText(errno)}});
  }
}

void CacheStore::Drop(const std::string& key) {
  std::lock_guard lock(commit_mu_);
  if (index_->Remove(key)) UnlinkEntryFile(key);
}

size_t CacheStore::Purge() {
  std::lock_guard lock(commit_mu_);
  std::vector<CacheEntry> all = index_->Clear();
  (void)index_->Flush();
  std::error_code ec;
  const fsys::path trash = dir_ / "trash" / std::to_string(trash_counter_.fetch_add(1));
  fsys::create_directories(trash.parent_path(), ec);
  if (!ec) fsys::rename(data_dir_, trash, ec);
  if (ec) {
    // Could not move the directory aside: unlink file by file instead.
    for (const CacheEntry& e : all) UnlinkEntryFile(e.key);
    return all.size();
  }
  fsys::create_directories(data_dir_, ec);
  if (ec) log::Error("cannot recreate cache data dir", {{"path", data_dir_.string()}});
  if (trash_remover_.joinable()) trash_remover_.join();
  trash_remover_ = std::jthread([trash] {
    std::error_code remove_ec;
    fsys::remove_all(trash, remove_ec);
  });
  return all.size();
}

int CacheStore::FsUsedPercent() {
  std::lock_guard lock(fs_mu_);
  const auto now = std::chrono::steady_clock::now();
  if (now - fs_checked_ < std::chrono::seconds(1) && fs_checked_.time_since_epoch().count() != 0) {
    return fs_percent_;
  }
  fs_checked_ = now;
  struct statvfs vfs {};
  if (::statvfs(dir_.c_str(), &vfs) != 0 || vfs.f_blocks == 0) {
    fs_percent_ = 100;  // the cache dir vanished: treat as full
    return fs_percent_;
  }
  // As df computes it: used / (used + available to us).
  const uint64_t used = vfs.f_blocks - vfs.f_bfree;
  const uint64_t denominator = used + vfs.f_bavail;
  fs_percent_ =
      denominator == 0 ? 100 : static_cast<int>((used * 100 + denominator - 1) / denominator);
  return fs_percent_;
}

bool CacheStore::CachingAllowed() {
  if (limits_.hard_limit_bytes != 0 && index_->total_bytes() >= limits_.hard_limit_bytes) {
    return false;
  }
  return FsUsedPercent() < limits_.hard_percent;
}

absl::StatusOr<TempFile> CacheStore::CreateTemp() {
  TempFile temp;
  temp.path =
      tmp_dir_ / StrCat("tmp_", static_cast<uint64_t>(::getpid()), "_", temp_counter_.fetch_add(1));
  temp.fd = fs::UniqueFd(::open(temp.path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!temp.fd.valid()) return ErrnoStatus(errno, StrCat("create ", temp.path.string()));
  return temp;
}

void CacheStore::DiscardTemp(const fsys::path& temp) { ::unlink(temp.c_str()); }

void CacheStore::EvictToSoftLimit(const std::string& keep) {
  std::vector<CacheEntry> evicted;
  if (limits_.soft_limit_bytes != 0) evicted = index_->EvictLru(limits_.soft_limit_bytes, keep);
  for (const CacheEntry& e : evicted) UnlinkEntryFile(e.key);
  size_t count = evicted.size();
  // File-system pressure: evict one by one (oldest first) until below the soft percentage.
  while (FsUsedPercent() >= limits_.soft_percent && index_->size() > (keep.empty() ? 0 : 1)) {
    std::vector<CacheEntry> one =
        index_->EvictLru(index_->total_bytes() > 0 ? index_->total_bytes() - 1 : 0, keep);
    if (one.empty()) break;
    for (const CacheEntry& e : one) UnlinkEntryFile(e.key);
    count += one.size();
    std::lock_guard lock(fs_mu_);
    fs_checked_ = {};  // re-read after unlinking
  }
  if (count > 0) {
    evictions_ += count;
    log::Info(
        "cache evicted least recently used entries",
        {{"count", std::to_string(count)}, {"cache_bytes", std::to_string(index_->total_bytes())}});
  }
}

absl::StatusOr<bool> CacheStore::Commit(const fsys::path& temp, CacheEntry entry) {
  if (!IsValidCacheKey(entry.key)) {
    DiscardTemp(temp);
    return absl::InternalError(StrCat("invalid cache key '", entry.key, "'"));
  }
  std::lock_guard lock(commit_mu_);
  if (FsUsedPercent() >= limits_.hard_percent ||
      (limits_.hard_limit_bytes != 0 && entry.size > limits_.hard_limit_bytes)) {
    DiscardTemp(temp);
    return false;
  }
  const fsys::path final_path = data_dir_ / entry.key;
  if (::rename(temp.c_str(), final_path.c_str()) != 0) {
    const int err = errno;
    DiscardTemp(temp);
    return ErrnoStatus(err, StrCat("rename ", temp.string(), " to ", final_path.string()));
  }
  const std::string key = entry.key;
  index_->Put(std::move(entry));
  EvictToSoftLimit(key);
  // The hard limit holds even when eviction could not make enough room.
  if (limits_.hard_limit_bytes != 0 && index_->total_bytes() > limits_.hard_limit_bytes) {
    index_->Remove(key);
    UnlinkEntryFile(key);
    return false;
  }
  return true;
}

}  // namespace ota::proxy
