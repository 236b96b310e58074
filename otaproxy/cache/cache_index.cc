#include "otaproxy/cache/cache_index.h"

#include <sqlite3.h>

#include <ctime>
#include <system_error>

#include "common/log/log.h"
#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::proxy {
namespace {

constexpr char kSchema[] =
    "CREATE TABLE IF NOT EXISTS ota_proxy_cache_v1("
    " key TEXT PRIMARY KEY NOT NULL,"
    " url TEXT NOT NULL,"
    " size INTEGER NOT NULL,"
    " last_access INTEGER NOT NULL,"
    " file_sha256 TEXT NOT NULL,"
    " file_compression_alg TEXT NOT NULL,"
    " content_type TEXT NOT NULL,"
    " content_encoding TEXT NOT NULL) WITHOUT ROWID;";

absl::Status SqlError(sqlite3* db, std::string_view what) {
  return absl::InternalError(StrCat("cache index: ", what, ": ", sqlite3_errmsg(db)));
}

absl::Status Exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string message = err != nullptr ? err : "unknown error";
    sqlite3_free(err);
    return absl::InternalError(StrCat("cache index: ", sql, ": ", message));
  }
  return absl::OkStatus();
}

struct StmtDeleter {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using Stmt = std::unique_ptr<sqlite3_stmt, StmtDeleter>;

absl::StatusOr<Stmt> Prepare(sqlite3* db, const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) != SQLITE_OK) {
    return SqlError(db, StrCat("prepare ", sql));
  }
  return Stmt(stmt);
}

std::string Column(sqlite3_stmt* stmt, int i) {
  const unsigned char* text = sqlite3_column_text(stmt, i);
  return text != nullptr ? std::string(reinterpret_cast<const char*>(text)) : std::string();
}

void Bind(sqlite3_stmt* stmt, int i, const std::string& text) {
  sqlite3_bind_text(stmt, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
}

absl::StatusOr<sqlite3*> OpenDb(const std::filesystem::path& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    std::string message = db != nullptr ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return absl::InternalError(StrCat("cache index: open ", path.string(), ": ", message));
  }
  sqlite3_busy_timeout(db, 5000);
  absl::Status status = Exec(db,
                             "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                             "PRAGMA temp_store=MEMORY;");
  if (status.ok()) status = Exec(db, "PRAGMA quick_check;");
  if (status.ok()) status = Exec(db, kSchema);
  if (!status.ok()) {
    sqlite3_close(db);
    return status;
  }
  return db;
}

}  // namespace

absl::StatusOr<std::unique_ptr<CacheIndex>> CacheIndex::Open(const std::filesystem::path& db_path,
                                                             CacheIndexOptions options) {
  absl::StatusOr<sqlite3*> db = OpenDb(db_path);
  if (!db.ok()) {
    // A damaged index only costs the cached files (CacheStore drops files without a row).
    log::Warning("cache index unusable, starting empty",
                 {{"path", db_path.string()}, {"error", std::string(db.status().message())}});
    std::error_code ec;
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
      std::filesystem::remove(db_path.string() + suffix, ec);
    }
    db = OpenDb(db_path);
    if (!db.ok()) {
      return WithContext(db.status(), StrCat("cannot open or re-create ", db_path.string()));
    }
  }
  std::unique_ptr<CacheIndex> index(new CacheIndex(*db, options));
  OTA_RETURN_IF_ERROR(index->LoadAll());
  index->writer_ = std::thread([raw = index.get()] { raw->WriterLoop(); });
  return index;
}

CacheIndex::CacheIndex(sqlite3* db, CacheIndexOptions options) : db_(db), options_(options) {}

CacheIndex::~CacheIndex() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (writer_.joinable()) writer_.join();
  if (absl::Status status = Flush(); !status.ok()) {
    log::Error("cache index: final flush failed", {{"error", std::string(status.message())}});
  }
  sqlite3_close(db_);
}

absl::Status CacheIndex::LoadAll() {
  OTA_ASSIGN_OR_RETURN(Stmt stmt, Prepare(db_,
                                          "SELECT key, url, size, last_access, file_sha256,"
                                          " file_compression_alg, content_type, content_encoding"
                                          " FROM ota_proxy_cache_v1 ORDER BY last_access"));
  std::lock_guard lock(mu_);
  int rc;
  while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
    CacheEntry e;
    e.key = Column(stmt.get(), 0);
    e.url = Column(stmt.get(), 1);
    e.size = static_cast<uint64_t>(sqlite3_column_int64(stmt.get(), 2));
    e.last_access = sqlite3_column_int64(stmt.get(), 3);
    e.file_sha256 = Column(stmt.get(), 4);
    e.file_compression_alg = Column(stmt.get(), 5);
    e.content_type = Column(stmt.get(), 6);
    e.content_encoding = Column(stmt.get(), 7);
    lru_.push_back(e.key);
    total_bytes_ += e.size;
    std::string key = e.key;
    entries_.insert_or_assign(key, Slot{std::move(e), std::prev(lru_.end())});
  }
  if (rc != SQLITE_DONE) return SqlError(db_, "load entries");
  return absl::OkStatus();
}

void CacheIndex::MarkDirtyLocked(const std::string& key) {
  dirty_[key] = true;
  if (dirty_.size() >= options_.batch_size) wake_.notify_all();
}

std::optional<CacheEntry> CacheIndex::Lookup(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  lru_.splice(lru_.end(), lru_, it->second.lru_pos);
  const int64_t now = std::time(nullptr);
  // Recency is persisted at one-second resolution; skip rewrites within the same second.
  if (it->second.entry.last_access != now) {
    it->second.entry.last_access = now;
    MarkDirtyLocked(key);
  }
  return it->second.entry;
}

std::optional<CacheEntry> CacheIndex::Peek(const std::string& key) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  return it->second.entry;
}

void CacheIndex::Put(CacheEntry entry) {
  std::lock_guard lock(mu_);
  if (entry.last_access == 0) entry.last_access = std::time(nullptr);
  auto it = entries_.find(entry.key);
  if (it != entries_.end()) {
    total_bytes_ -= it->second.entry.size;
    lru_.erase(it->second.lru_pos);
    entries_.erase(it);
  }
  lru_.push_back(entry.key);
  total_bytes_ += entry.size;
  const std::string key = entry.key;
  entries_.insert_or_assign(key, Slot{std::move(entry), std::prev(lru_.end())});
  MarkDirtyLocked(key);
}

std::optional<CacheEntry> CacheIndex::Remove(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  CacheEntry out = std::move(it->second.entry);
  total_bytes_ -= out.size;
  lru_.erase(it->second.lru_pos);
  entries_.erase(it);
  MarkDirtyLocked(key);
  return out;
}

std::vector<CacheEntry> CacheIndex::EvictLru(uint64_t max_bytes, const std::string& keep) {
  std::vector<CacheEntry> evicted;
  std::lock_guard lock(mu_);
  auto pos = lru_.begin();
  while (total_bytes_ > max_bytes && pos != lru_.end()) {
    if (*pos == keep) {
      ++pos;
      continue;
    }
    auto it = entries_.find(*pos);
    pos = lru_.erase(pos);
    total_bytes_ -= it->second.entry.size;
    dirty_[it->first] = true;
    evicted.push_back(std::move(it->second.entry));
    entries_.erase(it);
  }
  if (!evicted.empty()) wake_.notify_all();
  return evicted;
}

std::vector<CacheEntry> CacheIndex::Snapshot() const {
  std::lock_guard lock(mu_);
  std::vector<CacheEntry> out;
  out.reserve(entries_.size());
  for (const std::string& key : lru_) out.push_back(entries_.at(key).entry);
  return out;
}

std::vector<CacheEntry> CacheIndex::Clear() {
  std::lock_guard lock(mu_);
  std::vector<CacheEntry> out;
  out.reserve(entries_.size());
  for (const std::string& key : lru_) {
    out.push_back(std::move(entries_.at(key).entry));
    dirty_[key] = true;
  }
  entries_.clear();
  lru_.clear();
  total_bytes_ = 0;
  wake_.notify_all();
  return out;
}

uint64_t CacheIndex::total_bytes() const {
  std::lock_guard lock(mu_);
  return total_bytes_;
}

size_t CacheIndex::pending() const {
  std::lock_guard lock(mu_);
  return dirty_.size() + flushing_;
}

size_t CacheIndex::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

absl::Status CacheIndex::Flush() {
  std::lock_guard db_lock(db_mu_);
  // Take the pending set and the rows to write under mu_, then write without holding it.
  std::vector<CacheEntry> upserts;
  std::vector<std::string> deletes;
  {
    std::lock_guard lock(mu_);
    if (dirty_.empty()) return absl::OkStatus();
    for (const auto& [key, unused] : dirty_) {
      auto it = entries_.find(key);
      if (it != entries_.end()) {
        upserts.push_back(it->second.entry);
      } else {
        deletes.push_back(key);
      }
    }
    dirty_.clear();
    flushing_ = upserts.size() + deletes.size();
  }
  OTA_RETURN_IF_ERROR(Exec(db_, "BEGIN IMMEDIATE"));
  absl::Status status = [&]() -> absl::Status {
    OTA_ASSIGN_OR_RETURN(Stmt upsert, Prepare(db_,
                                              "INSERT OR REPLACE INTO ota_proxy_cache_v1 VALUES"
                                              " (?, ?, ?, ?, ?, ?, ?, ?)"));
    for (const CacheEntry& e : upserts) {
      sqlite3_reset(upsert.get());
      Bind(upsert.get(), 1, e.key);
      Bind(upsert.get(), 2, e.url);
      sqlite3_bind_int64(upsert.get(), 3, static_cast<sqlite3_int64>(e.size));
      sqlite3_bind_int64(upsert.get(), 4, e.last_access);
      Bind(upsert.get(), 5, e.file_sha256);
      Bind(upsert.get(), 6, e.file_compression_alg);
      Bind(upsert.get(), 7, e.content_type);
      Bind(upsert.get(), 8, e.content_encoding);
      if (sqlite3_step(upsert.get()) != SQLITE_DONE) return SqlError(db_, "upsert");
    }
    OTA_ASSIGN_OR_RETURN(Stmt del, Prepare(db_, "DELETE FROM ota_proxy_cache_v1 WHERE key = ?"));
    for (const std::string& key : deletes) {
      sqlite3_reset(del.get());
      Bind(del.get(), 1, key);
      if (sqlite3_step(del.get()) != SQLITE_DONE) return SqlError(db_, "delete");
    }
    return Exec(db_, "COMMIT");
  }();
  if (!status.ok()) (void)Exec(db_, "ROLLBACK");
  std::lock_guard lock(mu_);
  flushing_ = 0;
  if (!status.ok()) {
    // Put the keys back so the next flush retries them.
    for (const CacheEntry& e : upserts) dirty_[e.key] = true;
    for (const std::string& key : deletes) dirty_[key] = true;
  }
  return status;
}

void CacheIndex::WriterLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    wake_.wait_for(lock, options_.flush_interval,
                   [&] { return stopping_ || dirty_.size() >= options_.batch_size; });
    if (stopping_) break;
    if (dirty_.empty()) continue;
    lock.unlock();
    if (absl::Status status = Flush(); !status.ok()) {
      log::Error("cache index flush failed", {{"error", std::string(status.message())}});
    }
    lock.lock();
  }
}

}  // namespace ota::proxy
