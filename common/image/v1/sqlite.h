// RAII over the SQLite C API for reading an image's tables: one read-only connection, prepared
// statements that step row by row (a 300k-row table is never held in memory as rows).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace ota::image::v1 {

struct SqliteCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct SqliteFinalizer {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};

class SqliteStmt {
 public:
  // kTrue: a row is ready; kFalse: done.
  absl::StatusOr<bool> Step();
  absl::Status Reset();
  absl::Status BindBlob(int index, std::string_view blob);
  absl::Status BindInt(int index, int64_t value);

  bool IsNull(int col) const { return sqlite3_column_type(stmt_.get(), col) == SQLITE_NULL; }
  int Type(int col) const { return sqlite3_column_type(stmt_.get(), col); }
  int64_t Int(int col) const { return sqlite3_column_int64(stmt_.get(), col); }
  // TEXT or BLOB bytes; valid until the next Step/Reset.
  std::string_view Bytes(int col) const;
  std::optional<std::string_view> OptBytes(int col) const {
    if (IsNull(col)) return std::nullopt;
    return Bytes(col);
  }

 private:
  friend class SqliteDb;
  SqliteStmt(sqlite3* db, sqlite3_stmt* stmt, std::string what)
      : db_(db), stmt_(stmt), what_(std::move(what)) {}
  sqlite3* db_;
  std::unique_ptr<sqlite3_stmt, SqliteFinalizer> stmt_;
  std::string what_;
};

class SqliteDb {
 public:
  // Opens `path` read-only and immutable (nothing else writes it; no journal, no locks).
  // `what` names the table file in messages ("file table").
  static absl::StatusOr<SqliteDb> OpenReadOnly(const std::filesystem::path& path, std::string what);
  absl::StatusOr<SqliteStmt> Prepare(std::string_view sql);
  // A single-integer query ("SELECT count(*) ...").
  absl::StatusOr<int64_t> QueryInt(std::string_view sql);
  const std::string& what() const { return what_; }

 private:
  SqliteDb(sqlite3* db, std::string what) : db_(db), what_(std::move(what)) {}
  std::unique_ptr<sqlite3, SqliteCloser> db_;
  std::string what_;
};

}  // namespace ota::image::v1
